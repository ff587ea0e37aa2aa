"""The worker side of a send, which tasks.py calls with ids: fan-out into batches
(``fan_out``), sending one batch (``batches``, recording its progress in ``recording``), and
the periodic dispatcher (``dispatch``)."""

from ..progress import ClaimLost
from .batches import (
    BUSY,
    Claim,
    claim_batch,
    deliver_batch,
    fail_task,
    finish_if_complete,
    give_up_batch,
    send_batch,
)
from .dispatch import Dispatch, dispatch
from .fan_out import BATCHES_PER_PAGE, Job, fan_out
from .recording import STOP_CHECK_SECONDS, BatchProgress, TaskStopped

__all__ = [
    "BATCHES_PER_PAGE",
    "BUSY",
    "STOP_CHECK_SECONDS",
    "BatchProgress",
    "Claim",
    "ClaimLost",
    "Dispatch",
    "Job",
    "TaskStopped",
    "claim_batch",
    "deliver_batch",
    "dispatch",
    "fail_task",
    "fan_out",
    "finish_if_complete",
    "give_up_batch",
    "send_batch",
]
