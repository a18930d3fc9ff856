#!/bin/bash
# A destination that ends with an error, its monitor focused in a terminal: the error is on a
# line of its own and the shell's next line starts on a fresh row (no `(monitor) ` left there).
# Usage: tests-tmux/destination-error.sh BINARY GUEST PORT   (PORT: a free loopback TCP port)
set -u
cd "$(dirname "$0")/.."
BINARY=$1 GUEST=$2 PORT=$3
SESSION=swiftkvm-destination
. tests-tmux/lib.sh
trap kill_sessions EXIT

new_session "$SESSION" "SWIFTKVM_HISTORY= $BINARY -kernel $GUEST -incoming tcp:127.0.0.1:$PORT; echo EXIT=\$?; sleep 600" 200
wait_for "the destination waits" in_raw_mode
keys C-a c
wait_for "its monitor has the terminal" last_line_is "(monitor)"
keys 'info st'
send_garbage() { echo "not a migration stream" > "/dev/tcp/127.0.0.1/$PORT"; }
check "a peer sends garbage" send_garbage
wait_for "the destination ends with status 1" screen_has "EXIT=1"
check "the shell's line starts on a fresh row" screen_has_row "EXIT=1"
check "the error is on a line of its own" screen_matches '^swiftkvm: incoming migration failed: .*; the guest was not started$'
no_prompt() { ! pane | grep -qF '(monitor)'; }
check "no prompt is left on screen" no_prompt
finish
