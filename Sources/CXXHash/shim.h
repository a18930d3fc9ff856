// libxxhash (Debian's libxxhash-dev): the migration stream's digest (Migration/Stream/StreamDigest.swift).
// XXH3 goes through the library's runtime CPU dispatch (xxh_x86dispatch.h: SSE2, AVX2 or AVX-512,
// chosen once); its *_dispatch functions are called by name, so the macro renaming is not wanted.
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxhash.h>
#include <xxh_x86dispatch.h>
