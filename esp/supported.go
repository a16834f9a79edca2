package esp

import "github.com/petrel-vpn/petrel/wire"

// SupportsEncr reports whether this package can run the ESP encryption
// transform with a key of keyBits bits (0 where the transform has a fixed
// key size). Negotiation must offer and accept only these, or a Child SA
// would be agreed on the wire and then fail to install.
func SupportsEncr(id wire.EncrID, keyBits int) bool {
	switch id {
	case wire.EncrAES_GCM_16, wire.EncrAES_CBC:
		return keyBits == 128 || keyBits == 192 || keyBits == 256
	case wire.EncrCHACHA20_POLY1305:
		return keyBits == 0 || keyBits == 256
	}
	return false
}

// SupportsInteg reports whether this package can run the ESP integrity
// transform (IntegNONE is what AEAD transforms take).
func SupportsInteg(id wire.IntegID) bool {
	_, _, _, ok := integAlg(id)
	return ok || id == wire.IntegNONE
}
