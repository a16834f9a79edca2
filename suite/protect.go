package suite

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"math"
	"strconv"

	"github.com/petrel-vpn/petrel/wire"
)

// SKProtector protects SK (RFC 7296 §3.14) and SKF (RFC 7383 §2.5) payload
// bodies for one IKE SA: Seal uses this end's outbound keys, Open the peer's.
// It implements wire.Protector. Like the IKE SA that owns it, it is not safe
// for concurrent use.
//
// AEAD transforms (RFC 5282 §3, RFC 7634 §3) lay the body out as
// IV(8) | ciphertext(plaintext | padding | Pad Length) | ICV, with
// nonce = salt | IV and AAD = the message up to the body. IVs are a
// per-key counter from a random start, so they never repeat.
// Encrypt-then-MAC transforms lay it out as IV | ciphertext | ICV, with a
// random IV for CBC (RFC 7296 §3.14: "MUST be unpredictable"), a counter IV
// for CTR (RFC 5930 §3), and the ICV over the whole message up to the ICV.
type SKProtector struct {
	encr  *Encr
	integ *Integ
	seal  skDir
	open  skDir
	// counter is the next explicit IV for AEAD and CTR transforms. It
	// starts at a random value, so that even two protectors mistakenly
	// built from the same keys are unlikely to repeat an IV, and sealed
	// counts the IVs used so the counter never comes back round.
	counter, sealed uint64
	// rand is the CBC IV source; crypto/rand unless a test sets it.
	rand io.Reader
}

// skDir holds one direction's keyed primitives.
type skDir struct {
	aead  cipher.AEAD
	block cipher.Block
	salt  []byte // AEAD salt or CTR nonce
	mac   hash.Hash
	ikey  []byte
}

var _ wire.Protector = (*SKProtector)(nil)

// NewSKProtector keys a protector. integ is nil for AEAD encr. Encryption
// keys are Encr.KeyMatLen() octets (key | salt), integrity keys
// Integ.KeyLen octets. Keys are copied.
func NewSKProtector(encr *Encr, integ *Integ, sealEnc, sealInteg, openEnc, openInteg []byte) (*SKProtector, error) {
	if err := checkEncrInteg(encr, integ); err != nil {
		return nil, err
	}
	p := &SKProtector{encr: encr, integ: integ, rand: rand.Reader}
	var start [8]byte
	rand.Read(start[:])
	p.counter = binary.BigEndian.Uint64(start[:])
	var err error
	if p.seal, err = newSKDir(encr, integ, sealEnc, sealInteg); err != nil {
		return nil, err
	}
	if p.open, err = newSKDir(encr, integ, openEnc, openInteg); err != nil {
		return nil, err
	}
	return p, nil
}

// NewIKEProtector keys the protector of an IKE SA from its keys: the
// initiator seals with SK_ei/SK_ai and opens with SK_er/SK_ar, the responder
// the other way round (RFC 7296 §2.14).
func NewIKEProtector(s Suite, k *IKEKeys, initiator bool) (*SKProtector, error) {
	if initiator {
		return NewSKProtector(s.Encr, s.Integ, k.SKei, k.SKai, k.SKer, k.SKar)
	}
	return NewSKProtector(s.Encr, s.Integ, k.SKer, k.SKar, k.SKei, k.SKai)
}

func newSKDir(encr *Encr, integ *Integ, ekey, ikey []byte) (skDir, error) {
	var d skDir
	if len(ekey) != encr.KeyMatLen() {
		return d, errors.New("suite: " + encr.String() + " needs " + strconv.Itoa(encr.KeyMatLen()) + " octets of key material")
	}
	key, salt := ekey[:encr.KeyLen], ekey[encr.KeyLen:]
	d.salt = append([]byte(nil), salt...)
	var err error
	if encr.AEAD() {
		d.aead, err = encr.newAEAD(key)
		return d, err
	}
	if d.block, err = aes.NewCipher(key); err != nil {
		return d, err
	}
	if len(ikey) != integ.KeyLen {
		return d, errors.New("suite: " + integ.String() + " needs a " + strconv.Itoa(integ.KeyLen) + "-octet key")
	}
	d.ikey = append([]byte(nil), ikey...)
	d.mac = integ.New(d.ikey)
	return d, nil
}

func (p *SKProtector) icvLen() int {
	if p.encr.AEAD() {
		return p.encr.ICVLen
	}
	return p.integ.ICVLen
}

// padLen is the padding that makes plaintext | padding | Pad Length a
// multiple of the block length (RFC 7296 §3.14).
func (p *SKProtector) padLen(plaintextLen int) int {
	b := p.encr.BlockLen
	return (b - (plaintextLen+1)%b) % b
}

// SealedLen implements wire.Protector.
func (p *SKProtector) SealedLen(plaintextLen int) int {
	return p.encr.IVLen + plaintextLen + p.padLen(plaintextLen) + 1 + p.icvLen()
}

// Seal implements wire.Protector.
func (p *SKProtector) Seal(msg []byte, bodyOff int, plaintext []byte) error {
	if p.seal.aead == nil && p.seal.block == nil {
		return errors.New("suite: protector zeroed")
	}
	if bodyOff < 0 || bodyOff > len(msg) || len(msg)-bodyOff != p.SealedLen(len(plaintext)) {
		return errors.New("suite: Seal: body length does not match SealedLen")
	}
	body := msg[bodyOff:]
	ivLen, icv := p.encr.IVLen, p.icvLen()
	iv, inner := body[:ivLen], body[ivLen:len(body)-icv]
	pad := p.padLen(len(plaintext))
	copy(inner, plaintext)
	clear(inner[len(plaintext) : len(plaintext)+pad])
	inner[len(inner)-1] = byte(pad)

	switch p.encr.mode {
	case modeCBC:
		if _, err := io.ReadFull(p.rand, iv); err != nil {
			return err
		}
		cipher.NewCBCEncrypter(p.seal.block, iv).CryptBlocks(inner, inner)
	default: // CTR and AEADs: counter IV
		if p.sealed == math.MaxUint64 {
			return ErrIVExhausted
		}
		binary.BigEndian.PutUint64(iv, p.counter)
		p.counter++
		p.sealed++
		if p.encr.AEAD() {
			nonce := append(append(make([]byte, 0, 16), p.seal.salt...), iv...)
			p.seal.aead.Seal(inner[:0], nonce, inner, msg[:bodyOff])
			return nil
		}
		ctrStream(p.seal, iv).XORKeyStream(inner, inner)
	}
	m := p.seal.mac
	m.Reset()
	m.Write(msg[:len(msg)-icv])
	sum := m.Sum(nil)
	copy(msg[len(msg)-icv:], sum[:icv])
	return nil
}

// ctrStream is RFC 3686 §4's counter block: nonce | IV | 00000001.
func ctrStream(d skDir, iv []byte) cipher.Stream {
	var ctr [16]byte
	copy(ctr[:4], d.salt)
	copy(ctr[4:12], iv)
	ctr[15] = 1
	return cipher.NewCTR(d.block, ctr[:])
}

// Open implements wire.Protector. It never modifies msg.
func (p *SKProtector) Open(msg []byte, bodyOff int) ([]byte, error) {
	if p.open.aead == nil && p.open.block == nil {
		return nil, errors.New("suite: protector zeroed")
	}
	if bodyOff < 0 || bodyOff > len(msg) {
		return nil, ErrMalformed
	}
	body := msg[bodyOff:]
	ivLen, icv := p.encr.IVLen, p.icvLen()
	if len(body) < ivLen+1+icv {
		return nil, ErrMalformed
	}
	iv, ct := body[:ivLen], body[ivLen:len(body)-icv]
	var out []byte
	if p.encr.AEAD() {
		nonce := append(append(make([]byte, 0, 16), p.open.salt...), iv...)
		var err error
		out, err = p.open.aead.Open(nil, nonce, body[ivLen:], msg[:bodyOff])
		if err != nil {
			return nil, ErrAuthentication
		}
	} else {
		if p.encr.mode == modeCBC && len(ct)%aes.BlockSize != 0 {
			return nil, ErrMalformed
		}
		m := p.open.mac
		m.Reset()
		m.Write(msg[:len(msg)-icv])
		sum := m.Sum(nil)
		if subtle.ConstantTimeCompare(sum[:icv], msg[len(msg)-icv:]) != 1 {
			return nil, ErrAuthentication
		}
		out = make([]byte, len(ct))
		if p.encr.mode == modeCBC {
			cipher.NewCBCDecrypter(p.open.block, iv).CryptBlocks(out, ct)
		} else {
			ctrStream(p.open, iv).XORKeyStream(out, ct)
		}
	}
	// RFC 7296 §3.14: Pad Length is the last octet; the padding must fit.
	pad := int(out[len(out)-1])
	if pad+1 > len(out) {
		clear(out)
		return nil, ErrMalformed
	}
	return out[:len(out)-1-pad], nil
}

// Zero wipes the integrity keys and salts and drops the ciphers (the
// standard library's AES key schedules cannot be wiped; they become
// garbage). The protector fails every call afterwards.
func (p *SKProtector) Zero() {
	for _, d := range []*skDir{&p.seal, &p.open} {
		clear(d.salt)
		clear(d.ikey)
		*d = skDir{}
	}
}
