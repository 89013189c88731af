// zlib (Debian: zlib1g-dev): gzip reading for FER2013 CSVs, deflate and CRC-32 for PNG and weights.
#include <zlib.h>
