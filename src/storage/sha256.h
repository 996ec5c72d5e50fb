// Sha256Hex: the SHA-256 digest of a byte string, in lower-case hex. The cache names its
// entries by it (URI + content validator), so that names are fixed-length, file-system safe
// and stable across builds. Hand-written (FIPS 180-4) because linking libcrypto would load it
// into every `quiver serve`; pure function, thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace quiver::storage {

std::string Sha256Hex(std::string_view data);

}  // namespace quiver::storage
