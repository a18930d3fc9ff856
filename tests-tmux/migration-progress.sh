#!/bin/bash
# Watches a long migration pass in the interactive monitor, through tmux: a progress line
# appears above the prompt and changes in place, typing still works under it, and when the
# migration ends only the per-pass lines remain, with the prompt on the last line.
# Usage: tests-tmux/migration-progress.sh BINARY GUEST PORT
#   GUEST: guests/build/dirty.elf (filled with non-zero data, then idle, so pass 1 takes
#   seconds at 32 MiB/s and pass 2 is short). PORT: a free loopback TCP port.
# Waits poll the screen (no fixed sleeps decide the result); each gives up after 30 s.
set -u
cd "$(dirname "$0")/.."
BINARY=$1 GUEST=$2 PORT=$3
SESSION=swiftkvm-progress
. tests-tmux/lib.sh
GUEST_ARGS=(-m 256M -kernel "$GUEST" -append "fill=1 sweeps=1 size=128M")

PROGRESS='^migration: pass [0-9]+: [0-9]+% of [0-9]+ pages, [0-9]+ MiB/s, '
progress_line() { lines | grep -E "$PROGRESS" | tail -1; }
progress_above_prompt() {  # the progress line sits right above the prompt line ($1)
    [ "$(last_line)" = "$1" ] && lines | tail -2 | head -1 | grep -qE "$PROGRESS"
}
progress_changed_from() { local now; now=$(progress_line); [ -n "$now" ] && [ "$now" != "$1" ]; }
no_progress_line() { ! pane | grep -qE "$PROGRESS"; }

"$BINARY" "${GUEST_ARGS[@]}" -incoming "tcp:127.0.0.1:$PORT" -serial null -monitor none >/dev/null 2>&1 &
DESTINATION=$!
trap 'kill_sessions; kill $DESTINATION 2>/dev/null' EXIT
new_session "$SESSION" "SWIFTKVM_HISTORY= $BINARY ${GUEST_ARGS[*]:0:4} -append '${GUEST_ARGS[5]}'; echo EXIT=\$?; sleep 600"

# swiftkvm starts with the guest console focused; the guest fills its RAM once, then idles.
wait_for "guest filled its memory" screen_has "dirty: done 1 sweeps"
keys C-a c
wait_for "prompt shows" last_line_is "(monitor)"
keys 'migrate_set_parameter max-bandwidth 32' Enter
wait_for "parameter set" screen_has_row "(monitor) migrate_set_parameter max-bandwidth 32"
keys "migrate -d tcp:127.0.0.1:$PORT" Enter

wait_for "a progress line appears above the prompt" progress_above_prompt "(monitor)"
first=$(progress_line)
echo "   first: $first"
wait_for "the progress line changes in place" progress_changed_from "$first"
check "only one progress line on screen" [ "$(pane | grep -cE "$PROGRESS")" = 1 ]
keys 'info mig'
wait_for "a half-typed line stays under the progress line" progress_above_prompt "(monitor) info mig"
second=$(progress_line)
wait_for "and the progress line still changes" progress_changed_from "$second"
check "half-typed line intact" last_line_is "(monitor) info mig"
keys 'rate' Enter
wait_for "a command runs during the pass" screen_has "Migration status: active"

wait_for "the migration completes" screen_has "migration: completed in "
wait_for "no progress line is left on screen" no_progress_line
check "the pass 1 line replaced the progress line" screen_has "migration: pass 1: 65536 pages sent"
check "the accepted command line is intact" screen_has "(monitor) info migrate"
wait_for "the prompt is on the last line" last_line_is "(monitor)"
keys 'info status' Enter
wait_for "the prompt still works" screen_has "VM status: paused (postmigrate)"
keys C-a x
wait_for "Ctrl-a x quits" screen_has "EXIT=0"

finish
