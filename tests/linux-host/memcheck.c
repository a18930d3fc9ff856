// The memory-checking workload of the Linux guest tests: keeps a buffer full of a pattern that
// depends on each word's index and on the pass, and on every pass checks the previous pass's
// pattern while writing the next. A page that a migration or snapshot lost, sent stale or
// corrupted shows up as a mismatch on the next pass. It also watches its own clock: the longest
// gap between two passes is how long the guest saw itself paused.
//
//   memcheck MIB [PAUSE_MS]   one line a pass on stdout:
//   memcheck: pass N errors E gap_ms G max_gap_ms M
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t pattern(uint64_t index, uint64_t pass) {
    uint64_t z = index * 0x9e3779b97f4a7c15ull + pass * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 31)) * 0x94d049bb133111ebull;
    return z ^ (z >> 29);
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 2 || atol(argv[1]) <= 0) {
        fprintf(stderr, "usage: memcheck MIB [PAUSE_MS]\n");
        return 2;
    }
    size_t words = (size_t)atol(argv[1]) << 17;
    long pause_ms = argc > 2 ? atol(argv[2]) : 0;
    uint64_t *buffer = malloc(words * sizeof *buffer);
    if (buffer == NULL) {
        perror("memcheck: malloc");
        return 1;
    }
    for (size_t i = 0; i < words; i++) buffer[i] = pattern(i, 0);

    uint64_t errors = 0;
    double last = now_ms(), max_gap = 0;
    for (uint64_t pass = 1;; pass++) {
        for (size_t i = 0; i < words; i++) {
            if (buffer[i] != pattern(i, pass - 1)) {
                if (errors < 10)
                    printf("memcheck: mismatch at word %zu (page %zu) in pass %llu: %016llx\n", i,
                           i >> 9, (unsigned long long)pass, (unsigned long long)buffer[i]);
                errors++;
            }
            buffer[i] = pattern(i, pass);
        }
        double t = now_ms(), gap = t - last;
        last = t;
        if (gap > max_gap) max_gap = gap;
        printf("memcheck: pass %llu errors %llu gap_ms %.0f max_gap_ms %.0f\n",
               (unsigned long long)pass, (unsigned long long)errors, gap, max_gap);
        fflush(stdout);
        if (pause_ms > 0) {
            struct timespec p = {pause_ms / 1000, (pause_ms % 1000) * 1000000};
            nanosleep(&p, NULL);
        }
    }
}
