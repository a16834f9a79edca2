package suite

import (
	"encoding/binary"
	"errors"
)

// IKEKeys are the seven secrets of an IKE SA (RFC 7296 §2.14). Encryption
// keys include the salt for AEAD and CTR transforms (Encr.KeyMatLen);
// SK_ai/SK_ar are empty for AEAD suites.
type IKEKeys struct {
	SKd, SKai, SKar, SKei, SKer, SKpi, SKpr []byte
}

// Zero wipes every key.
func (k *IKEKeys) Zero() {
	for _, b := range [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer, k.SKpi, k.SKpr} {
		clear(b)
	}
}

// Suite is a negotiated IKE SA crypto suite. Integ is nil for AEAD Encr.
type Suite struct {
	Encr  *Encr
	PRF   *PRF
	Integ *Integ
}

// Validate checks that the suite is complete and that AEAD and INTEG are
// not combined (RFC 7296 §3.3).
func (s Suite) Validate() error {
	if s.PRF == nil {
		return errors.New("suite: suite needs a PRF")
	}
	return checkEncrInteg(s.Encr, s.Integ)
}

func checkEncrInteg(encr *Encr, integ *Integ) error {
	if encr == nil {
		return errors.New("suite: suite needs an ENCR transform")
	}
	if encr.mode == modeNull {
		return &ForbiddenError{Transform: encr.Transform(), Section: "RFC 8247 §2.1"}
	}
	if encr.AEAD() != (integ == nil) {
		return errors.New("suite: INTEG must be absent with an AEAD and present otherwise (RFC 7296 §3.3)")
	}
	return nil
}

// SKEYSEED returns prf(Ni | Nr, g^ir) (RFC 7296 §2.14). HMAC PRFs take the
// nonces whole as key.
func SKEYSEED(prf *PRF, ni, nr, gir []byte) []byte {
	key := make([]byte, 0, len(ni)+len(nr))
	key = append(append(key, ni...), nr...)
	return prf.Compute(key, gir)
}

// RekeySKEYSEED returns the SKEYSEED of a rekeyed IKE SA (RFC 7296 §2.18):
// prf(SK_d(old), g^ir(new) | Ni | Nr), with RFC 9370 §2.2.2's additional
// key exchanges' shared secrets appended in order (SK(1) | ... | SK(n)).
// ni and nr are the new exchange's nonces, initiator's first.
func RekeySKEYSEED(prf *PRF, oldSKd, gir, ni, nr []byte, additional ...[]byte) []byte {
	data := [][]byte{gir, ni, nr}
	return prf.Compute(oldSKd, append(data, additional...)...)
}

// IntermediateSKEYSEED is RFC 9370 §2.2.2's update after each
// IKE_INTERMEDIATE key exchange: prf(SK_d(n-1), SK(n) | Ni | Nr).
func IntermediateSKEYSEED(prf *PRF, prevSKd, shared, ni, nr []byte) []byte {
	return prf.Compute(prevSKd, shared, ni, nr)
}

// DeriveIKEKeys expands SKEYSEED into the seven keys: {SK_d | SK_ai | SK_ar
// | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
// (RFC 7296 §2.14). SPIs are the 8-octet header values.
func DeriveIKEKeys(s Suite, skeyseed, ni, nr []byte, spiI, spiR uint64) (*IKEKeys, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	seed := make([]byte, 0, len(ni)+len(nr)+16)
	seed = append(append(seed, ni...), nr...)
	seed = binary.BigEndian.AppendUint64(seed, spiI)
	seed = binary.BigEndian.AppendUint64(seed, spiR)
	integLen := 0
	if s.Integ != nil {
		integLen = s.Integ.KeyLen
	}
	encLen, prfLen := s.Encr.KeyMatLen(), s.PRF.KeyLen
	total := 3*prfLen + 2*integLen + 2*encLen
	if total > 255*s.PRF.Size {
		return nil, errors.New("suite: key material exceeds prf+ limit")
	}
	km := s.PRF.Plus(skeyseed, seed, total)
	k := &IKEKeys{}
	take := func(n int) []byte {
		b := km[:n:n]
		km = km[n:]
		return b
	}
	k.SKd = take(prfLen)
	k.SKai, k.SKar = take(integLen), take(integLen)
	k.SKei, k.SKer = take(encLen), take(encLen)
	k.SKpi, k.SKpr = take(prfLen), take(prfLen)
	return k, nil
}

// ChildKeymat returns n octets of Child SA key material (RFC 7296 §2.17):
// prf+(SK_d, Ni | Nr) without PFS, or prf+(SK_d, g^ir(new) | Ni | Nr) with a
// KE exchange in CREATE_CHILD_SA (gir non-empty). RFC 9370 §2.2.4's
// additional shared secrets are appended after Nr.
func ChildKeymat(prf *PRF, skd, gir, ni, nr []byte, n int, additional ...[]byte) ([]byte, error) {
	if n < 0 || n > 255*prf.Size {
		return nil, errors.New("suite: Child SA key material exceeds prf+ limit")
	}
	seed := make([]byte, 0, len(gir)+len(ni)+len(nr))
	seed = append(append(append(seed, gir...), ni...), nr...)
	for _, a := range additional {
		seed = append(seed, a...)
	}
	return prf.Plus(skd, seed, n), nil
}

// ChildKeys are one Child SA's keys. Encryption keys include any salt.
type ChildKeys struct {
	EncrI, IntegI []byte // initiator → responder
	EncrR, IntegR []byte // responder → initiator
}

// Zero wipes the keys.
func (c *ChildKeys) Zero() {
	for _, b := range [][]byte{c.EncrI, c.IntegI, c.EncrR, c.IntegR} {
		clear(b)
	}
}

// ChildKeymatLen is the KEYMAT length for one ESP Child SA pair.
func ChildKeymatLen(encrKeyMatLen, integKeyLen int) int {
	return 2 * (encrKeyMatLen + integKeyLen)
}

// SplitChildKeymat splits KEYMAT into the four keys: all keys for
// initiator→responder traffic first, then responder→initiator
// (RFC 7296 §2.17), each as encryption key then integrity key (RFC 4303 §2,
// the order of the ESP transforms). It copies, so keymat can be wiped.
func SplitChildKeymat(keymat []byte, encrKeyMatLen, integKeyLen int) (*ChildKeys, error) {
	if len(keymat) < ChildKeymatLen(encrKeyMatLen, integKeyLen) || encrKeyMatLen < 0 || integKeyLen < 0 {
		return nil, errors.New("suite: Child SA key material too short")
	}
	take := func(n int) []byte {
		b := append([]byte(nil), keymat[:n]...)
		keymat = keymat[n:]
		return b
	}
	c := &ChildKeys{}
	c.EncrI, c.IntegI = take(encrKeyMatLen), take(integKeyLen)
	c.EncrR, c.IntegR = take(encrKeyMatLen), take(integKeyLen)
	return c, nil
}
