package suite

import "crypto/subtle"

// keyPad is the constant of RFC 7296 §2.15, without a terminator.
const keyPad = "Key Pad for IKEv2"

// SignedOctets builds the octets an AUTH payload covers (RFC 7296 §2.15):
// RealMessage | Nonce | prf(SK_p, RestOfIDPayload), where realMessage is
// the sender's first message (IKE_SA_INIT, as sent), nonce is the peer's
// nonce data, skp is the sender's SK_pi or SK_pr and restOfID is the ID
// payload body after its generic header (ID type, three reserved octets,
// identification data). RFC 9242 §3.3.2's IKE_INTERMEDIATE additions are
// appended by the caller.
func SignedOctets(prf *PRF, realMessage, nonce, skp, restOfID []byte) []byte {
	mac := prf.Compute(skp, restOfID)
	out := make([]byte, 0, len(realMessage)+len(nonce)+len(mac))
	return append(append(append(out, realMessage...), nonce...), mac...)
}

// PSKAuth returns the shared-key AUTH data (RFC 7296 §2.15):
// prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>). It is also
// the EAP form when secret is the EAP MSK.
func PSKAuth(prf *PRF, secret, signedOctets []byte) []byte {
	k := prf.Compute(secret, []byte(keyPad))
	defer clear(k)
	return prf.Compute(k, signedOctets)
}

// VerifyPSKAuth recomputes the AUTH data and compares it with got in
// constant time.
func VerifyPSKAuth(prf *PRF, secret, signedOctets, got []byte) bool {
	want := PSKAuth(prf, secret, signedOctets)
	return subtle.ConstantTimeCompare(want, got) == 1
}
