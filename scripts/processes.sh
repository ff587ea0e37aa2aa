# Sourced by run.sh and demo.sh: the background processes they start (append their pids to
# `pids`) are all stopped on exit, on Ctrl-C and on TERM.
pids=()
stop_all() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT
