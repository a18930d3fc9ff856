#!/bin/bash
# Drives the interactive monitor the way a person would, through tmux, and checks the screen.
# Usage: tests-tmux/monitor-interactive.sh [COMMAND...]
#   COMMAND starts swiftkvm with the guest console and the monitor sharing the terminal, the
#   monitor focused first, and something printing asynchronous lines now and then. Default: the
#   scratch main (env START_IN_MONITOR=1 TICK=1), which the real command line replaces.
#   ASYNC_PATTERN (default "tick"): text of the lines that arrive on their own.
#   START_IN_CONSOLE=1: the command starts with the guest console focused (swiftkvm's default).
# Waits poll the screen (no fixed sleeps decide the result); each wait gives up after 15 s.
set -u
cd "$(dirname "$0")/.."
SESSION=swiftkvm-tmux-$$
HISTORY=$(mktemp)
if [ $# -gt 0 ]; then COMMAND="$*"; else COMMAND="env START_IN_MONITOR=1 TICK=1 .build/debug/swiftkvm"; fi
ASYNC_PATTERN=${ASYNC_PATTERN:-tick}
failures=0

pane() { tmux capture-pane -p -t "$SESSION"; }
last_line() { pane | grep -v '^$' | tail -1; }
wait_for() {  # wait_for DESCRIPTION COMMAND...: until COMMAND succeeds
    local description=$1; shift
    for _ in $(seq 150); do "$@" >/dev/null 2>&1 && { echo "ok: $description"; return 0; }; sleep 0.1; done
    echo "FAIL: $description"; echo "--- screen:"; pane; echo "---"; failures=$((failures + 1)); return 1
}
screen_has() { pane | grep -qF -- "$1"; }
last_line_is() { [ "$(last_line)" = "$1" ]; }

trap 'tmux kill-session -t "$SESSION" 2>/dev/null; rm -f "$HISTORY"' EXIT
tmux new-session -d -s "$SESSION" -x 120 -y 30 \
    "SWIFTKVM_HISTORY=$HISTORY $COMMAND; echo EXIT=\$?; stty -a; sleep 600"

if [ -n "${START_IN_CONSOLE:-}" ]; then
    # Like QEMU, swiftkvm starts with the guest console focused: switch to the monitor first.
    wait_for "guest console shows output" screen_has "$ASYNC_PATTERN"
    tmux send-keys -t "$SESSION" C-a c
fi
wait_for "prompt shows" last_line_is "(monitor)"
tmux send-keys -t "$SESSION" 'inf' Tab
# capture-pane drops trailing blanks: "(monitor) info " reads as "(monitor) info".
wait_for "Tab completes inf to 'info '" last_line_is "(monitor) info"
tmux send-keys -t "$SESSION" C-u 'info status' Enter
wait_for "command output" screen_has "VM status: running"
tmux send-keys -t "$SESSION" Up
wait_for "Up recalls history" last_line_is "(monitor) info status"
tmux send-keys -t "$SESSION" C-u 'half typed'
ticks_before=$(pane | grep -c -- "$ASYNC_PATTERN")
wait_for "async output arrives" bash -c "[ \$(tmux capture-pane -p -t $SESSION | grep -c -- '$ASYNC_PATTERN') -gt $ticks_before ]"
wait_for "half-typed line intact below async output" last_line_is "(monitor) half typed"
tmux send-keys -t "$SESSION" C-a c
tmux send-keys -t "$SESSION" 'to the guest' Enter
wait_for "Ctrl-a c: keys go to the guest" screen_has "(monitor) half typedto the guest"
tmux send-keys -t "$SESSION" C-a h
wait_for "Ctrl-a h prints help" screen_has "C-a c    switch between console and monitor"
tmux send-keys -t "$SESSION" C-a c
wait_for "Ctrl-a c: back to the monitor" last_line_is "(monitor)"
tmux send-keys -t "$SESSION" C-a x
wait_for "Ctrl-a x quits" screen_has "swiftkvm: terminated"
wait_for "exit status 0" screen_has "EXIT=0"
terminal_restored() { local modes; modes=$(pane | tr ' ' '\n'); for mode in icanon echo isig icrnl opost; do echo "$modes" | grep -qx "$mode" || return 1; done; }
wait_for "terminal restored (icanon echo isig icrnl opost)" terminal_restored
wait_for "history file written" grep -qx 'info status' "$HISTORY"

if [ $failures -eq 0 ]; then echo "PASS"; else echo "$failures FAILED"; exit 1; fi
