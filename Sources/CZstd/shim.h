// libzstd (Debian's libzstd-dev): compressed migration batches (Migration/Stream/BatchCompression.swift).
#include <zstd.h>
