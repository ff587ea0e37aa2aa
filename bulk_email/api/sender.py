"""Which template and which From address a course's sends use: per course, else per
organization, else the site's (settings TEMPLATE_BY_* and FROM_ADDRESSES_BY_*). Staff choose
among the From addresses the operator allowed; they never type one."""

from dataclasses import dataclass

from django.utils.translation import gettext as _

from .. import app_settings
from ..exceptions import InvalidEmailError
from ..lms import CourseInfo


@dataclass(frozen=True)
class SenderOptions:
    template_name: str  # "" : the site's default template
    from_addresses: tuple[str, ...]  # the first is the default

    @property
    def default_from(self) -> str:
        return self.from_addresses[0]


def sender_options(*, course: CourseInfo) -> SenderOptions:
    template = configured(course, "TEMPLATE_BY") or app_settings.get("DEFAULT_TEMPLATE_NAME")
    addresses = configured(course, "FROM_ADDRESSES_BY") or [app_settings.from_email()]
    return SenderOptions(template_name=template or "", from_addresses=tuple(addresses))


def configured(course: CourseInfo, setting: str):
    """The course's entry of ``{setting}_COURSE``, else its organization's of ``_ORG``."""
    by_course = app_settings.get(f"{setting}_COURSE") or {}
    by_org = app_settings.get(f"{setting}_ORG") or {}
    return by_course.get(course.course_id) or by_org.get(course.org)


def chosen_from(options: SenderOptions, from_addr: str) -> str:
    """The From address a send stores: the one staff chose, which must be one the operator
    allowed for the course, else the course's default."""
    if not from_addr:
        return options.default_from
    if from_addr not in options.from_addresses:
        allowed = ", ".join(options.from_addresses)
        raise InvalidEmailError(
            _("This course sends from %(allowed)s; choose one of them.") % {"allowed": allowed},
            field="from_addr",
        )
    return from_addr
