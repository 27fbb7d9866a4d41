# Sourced by the benchmark scripts: one way to time a run and record it.
#   timed NAME CMD [ARGS...]
# runs CMD with stdout and stderr in $OUT/NAME.log and appends "NAME rc=<CMD's exit code> wall_s=<seconds>"
# to $OUT/summary.txt (and prints it); returns CMD's exit code.
timed() {
  local name=$1 t0 rc
  shift
  t0=$(date +%s)
  "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  echo "$name rc=$rc wall_s=$(( $(date +%s) - t0 ))" | tee -a "$OUT/summary.txt"
  return $rc
}
