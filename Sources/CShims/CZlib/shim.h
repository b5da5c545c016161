#ifndef UVWEBSOCKET_CZLIB_SHIM_H
#define UVWEBSOCKET_CZLIB_SHIM_H
// zlib's raw deflate for permessage-deflate (RFC 7692 §7.2).
#include <zlib.h>
#endif
