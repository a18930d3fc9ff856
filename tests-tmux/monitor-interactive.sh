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
SESSION=swiftkvm-tmux
WAIT_TENTHS=150
. tests-tmux/lib.sh
HISTORY=$(mktemp)
if [ $# -gt 0 ]; then COMMAND="$*"; else COMMAND="env START_IN_MONITOR=1 TICK=1 .build/debug/swiftkvm"; fi
ASYNC_PATTERN=${ASYNC_PATTERN:-tick}

trap 'kill_sessions; rm -f "$HISTORY"' EXIT
new_session "$SESSION" "SWIFTKVM_HISTORY=$HISTORY $COMMAND; echo EXIT=\$?; stty -a; sleep 600"

if [ -n "${START_IN_CONSOLE:-}" ]; then
    # Like QEMU, swiftkvm starts with the guest console focused: switch to the monitor first.
    wait_for "guest console shows output" screen_has "$ASYNC_PATTERN"
    keys C-a c
fi
wait_for "prompt shows" last_line_is "(monitor)"
check "the monitor's banner, as in QEMU" screen_matches "^swiftkvm [0-9.]+ monitor - type 'help' for more information\$"
keys 'inf' Tab
# capture-pane drops trailing blanks: "(monitor) info " reads as "(monitor) info".
wait_for "Tab completes inf to 'info '" last_line_is "(monitor) info"
keys C-u 'info status' Enter
wait_for "command output" screen_has "VM status: running"
keys Up
wait_for "Up recalls history" last_line_is "(monitor) info status"
keys C-u 'half typed'
ticks_before=$(pane | grep -c -- "$ASYNC_PATTERN")
more_async_lines_than() { [ "$(pane | grep -c -- "$ASYNC_PATTERN")" -gt "$1" ]; }
wait_for "async output arrives" more_async_lines_than "$ticks_before"
wait_for "half-typed line intact below async output" last_line_is "(monitor) half typed"
keys C-a c
keys 'to the guest' Enter
wait_for "Ctrl-a c: keys go to the guest" screen_has_row "to the guest"
check "and the monitor line stays above, as in QEMU" screen_has_row "(monitor) half typed"
keys C-a h
wait_for "Ctrl-a h prints help" screen_has "C-a c    switch between console and monitor"
keys C-a c
wait_for "Ctrl-a c: back to the monitor" last_line_is "(monitor)"
keys C-a x
wait_for "Ctrl-a x quits" screen_has "swiftkvm: terminated"
wait_for "exit status 0" screen_has "EXIT=0"
terminal_restored() { local modes; modes=$(pane | tr ' ' '\n'); for mode in icanon echo isig icrnl opost; do echo "$modes" | grep -qx "$mode" || return 1; done; }
wait_for "terminal restored (icanon echo isig icrnl opost)" terminal_restored
wait_for "history file written" grep -qx 'info status' "$HISTORY"

finish
