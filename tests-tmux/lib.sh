# What the tests-tmux scripts share: a tmux server of their own (so the history limit is
# theirs and nobody else's sessions are touched), reading the screen and its history, and
# waits that poll the screen (no fixed sleep decides a result).
# Source it from a script that sets SESSION (the session `pane` and friends read by default).
TMUX_SOCKET=swiftkvm-test-$$
failures=0
# How long each wait polls, in tenths of a second.
WAIT_TENTHS=${WAIT_TENTHS:-300}

tmx() { tmux -L "$TMUX_SOCKET" -f /dev/null "$@"; }
# new_session NAME COMMAND [COLUMNS]: a terminal (120 columns unless told, 40 rows) running
# COMMAND, keeping 200000 rows of history.
new_session() {
    tmx start-server \; set-option -g history-limit 200000 \; new-session -d -s "$1" -x "${3:-120}" -y 40 "$2"
}
# kill-server returns before the server has exited; a new session started in that window
# connects to the dying server ("server exited unexpectedly"), so wait until its socket is gone.
TMUX_SOCKET_PATH=${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$TMUX_SOCKET
kill_sessions() {
    tmx kill-server 2>/dev/null
    for _ in $(seq 50); do [ -S "$TMUX_SOCKET_PATH" ] || return 0; sleep 0.1; done
}

pane() { tmx capture-pane -p -t "${1:-$SESSION}"; }
# Every row the terminal ever showed, oldest first.
history() { tmx capture-pane -p -S - -E - -t "${1:-$SESSION}"; }
lines() { pane "$@" | grep -v '^$'; }
last_line() { lines "$@" | tail -1; }
screen_has() { pane | grep -qF -- "$1"; }
history_has() { history | grep -qF -- "$1"; }
screen_has_row() { pane | grep -qxF -- "$1"; }
screen_matches() { pane | grep -qE -- "$1"; }
last_line_is() { [ "$(last_line)" = "$1" ]; }
keys() { tmx send-keys -t "$SESSION" "$@"; }
# The program in the terminal has put it in raw mode (so keys typed now reach it, not the shell).
in_raw_mode() { stty -F "$(tmx display -p -t "$SESSION" '#{pane_tty}')" -a | grep -q -- '-icanon'; }

report_failure() {
    echo "FAIL: $1"; echo "--- screen of $SESSION:"; pane; echo "---"; failures=$((failures + 1))
}
wait_for() {  # wait_for DESCRIPTION COMMAND...: until COMMAND succeeds
    local description=$1; shift
    for _ in $(seq "$WAIT_TENTHS"); do
        "$@" >/dev/null 2>&1 && { echo "ok: $description"; return 0; }
        # Nothing more can appear once the terminal is gone: stop rather than time out at every wait.
        tmx has-session 2>/dev/null || { report_failure "$description (the tmux server is gone)"; finish; }
        sleep 0.1
    done
    report_failure "$description"; return 1
}
check() {  # check DESCRIPTION COMMAND...: COMMAND must succeed now
    local description=$1; shift
    if "$@" >/dev/null 2>&1; then echo "ok: $description"; else report_failure "$description"; fi
}
finish() {
    if [ $failures -eq 0 ]; then echo "PASS"; else echo "$failures FAILED"; exit 1; fi
}
