#!/bin/bash
# Every line a guest prints reaches the screen whole and in order, whichever side has the
# terminal: a guest flooding its console (dirty.elf printing `sweep N` for every sweep, about
# 2000 lines a second) while the monitor has the focus for ten seconds, a command typed and
# run under it, and a migration printing its pass lines while the guest prints. Reads tmux's
# whole history (capture-pane -S -), so a line that scrolled away still counts.
# Usage: tests-tmux/guest-lines.sh BINARY DIRTY_ELF PORT   (PORT: a free loopback TCP port)
set -u
cd "$(dirname "$0")/.."
BINARY=$1 GUEST=$2 PORT=$3
SESSION=swiftkvm-flood
. tests-tmux/lib.sh

# check_guest_lines EVERY: every row is a whole `sweep N` line with N counting up by EVERY
# without a gap, or one of the monitor's own lines; only the last sweep row may be unfinished.
check_guest_lines() {
    history | awk -v every="$1" '
        /^$/ { next }
        /^sweep [0-9]+$/ {
            if (partial != "") { print "not a whole line: " partial; bad = 1; partial = "" }
            n = $2 + 0
            # A guest paused mid-line (the source after switchover) leaves a prefix of the next
            # line, such as `sweep 4` for `sweep 4678`: that is an unfinished row, not a gap.
            if (previous != "" && n != previous + every && index("sweep " (previous + every), $0) == 1) { partial = $0; next }
            if (previous != "" && n != previous + every) { print "gap or disorder: sweep " previous " then " n; bad = 1 }
            previous = n; sweeps++; next
        }
        /^(\(monitor\)|swiftkvm[: ]|dirty: |VM status: |migration: |EXIT=)/ { next }
        { if (partial != "") { print "not a whole line: " partial; bad = 1 }; partial = $0 }
        END {
            if (partial != "" && index("sweep " (previous + every), partial) != 1) { print "not a whole line: " partial; bad = 1 }
            print sweeps " sweep lines"
            exit bad || sweeps < 20
        }'
}

trap 'kill_sessions; [ -n "${DESTINATION:-}" ] && kill $DESTINATION 2>/dev/null' EXIT

# 1. A flood while the monitor has the terminal for ten seconds.
new_session "$SESSION" "SWIFTKVM_HISTORY= $BINARY -m 64M -kernel $GUEST -append 'size=64K every=1'; echo EXIT=\$?; sleep 600" 200
wait_for "the guest floods its console" screen_matches '^sweep [0-9]{3,}$'
keys C-a c
wait_for "the monitor takes the terminal" last_line_is "(monitor)"
keys 'info sta'
sleep 4
# The prompt is redrawn under every piece of output: look until a capture falls between two.
wait_for "a half-typed line stays intact under the flood" last_line_is "(monitor) info sta"
keys 'tus' Enter
wait_for "a command runs under the flood" history_has "VM status: running"
check "its line is whole" history_has "(monitor) info status"
sleep 6
keys C-a x
wait_for "Ctrl-a x quits" screen_has "EXIT=0"
check "every sweep line arrived whole and in order" check_guest_lines 1
check_guest_lines 1 | tail -3
kill_sessions

# 2. A migration printing its pass lines while the guest prints, in both focus modes.
GUEST_ARGS="-m 64M -kernel $GUEST -append 'size=16M every=2'"
# exec, so that $! is swiftkvm itself and the kills below reach it.
(eval "exec $BINARY $GUEST_ARGS -incoming tcp:127.0.0.1:$PORT -serial null -monitor none" >/dev/null 2>&1) &
DESTINATION=$!
new_session "$SESSION" "SWIFTKVM_HISTORY= $BINARY $GUEST_ARGS; echo EXIT=\$?; sleep 600" 200
wait_for "the guest prints" screen_matches '^sweep [0-9]+$'
keys C-a c
wait_for "the monitor takes the terminal" last_line_is "(monitor)"
keys 'migrate_set_parameter max-bandwidth 32' Enter 'migrate_set_parameter downtime-limit 2000' Enter
keys "migrate -d tcp:127.0.0.1:$PORT" Enter
wait_for "a pass ends with the monitor focused" history_has "migration: pass 1: "
keys C-a c
wait_for "the migration completes with the console focused" history_has "migration: completed in "
keys C-a c
wait_for "back in the monitor" last_line_is "(monitor)"
keys 'info status' Enter
wait_for "the source is paused" history_has "VM status: paused (postmigrate)"
check "every sweep line and every migration line arrived whole and in order" check_guest_lines 2
check_guest_lines 2 | tail -3
keys C-a x
wait_for "Ctrl-a x quits" screen_has "EXIT=0"

# The destination ran the migrated guest; end it here rather than rely on the EXIT trap alone.
kill "$DESTINATION" 2>/dev/null; wait "$DESTINATION" 2>/dev/null

finish
