// The benchmark's view of a pause from inside the guest: reads CLOCK_MONOTONIC every INTERVAL_MS
// and prints each gap between two readings longer than THRESHOLD_MS, with the clock at its end,
// so that the largest gap within a window of the guest's clock (say, around a migration) is how
// long the guest saw itself stopped there. A gap includes the interval itself. Gaps longer than
// CONSOLE_MS also go to stderr, the console: after a live migration the first such line on the
// destination's console is the gap that the switchover made, whatever came before it.
//
//   clockgap INTERVAL_MS THRESHOLD_MS CONSOLE_MS   prints "clockgap: start at_s T" once, then
//   for each gap: clockgap: gap_ms G at_s T
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    long interval_ms = argc > 1 ? atol(argv[1]) : 0;
    double threshold_ms = argc > 2 ? atof(argv[2]) : 0, console_ms = argc > 3 ? atof(argv[3]) : 0;
    if (argc != 4 || interval_ms <= 0 || threshold_ms <= 0 || console_ms < threshold_ms) {
        fprintf(stderr, "usage: clockgap INTERVAL_MS THRESHOLD_MS CONSOLE_MS (CONSOLE_MS >= THRESHOLD_MS)\n");
        return 2;
    }
    struct timespec interval = {interval_ms / 1000, (interval_ms % 1000) * 1000000};
    double last = now_s();
    printf("clockgap: start at_s %.3f\n", last);
    fflush(stdout);
    for (;;) {
        nanosleep(&interval, NULL);
        double t = now_s(), gap_ms = (t - last) * 1e3;
        last = t;
        if (gap_ms > threshold_ms) {
            printf("clockgap: gap_ms %.1f at_s %.3f\n", gap_ms, t);
            fflush(stdout);
            // stderr is unbuffered: one write, so the line never splits around a shell's output.
            if (gap_ms > console_ms) fprintf(stderr, "clockgap: gap_ms %.1f at_s %.3f\n", gap_ms, t);
        }
    }
}
