package suite

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// CCM mode (RFC 3610, NIST SP 800-38C) over a 128-bit block cipher, as the
// standard library has none. IKEv2 and ESP use it with an 11-octet nonce
// (3-octet salt | 8-octet IV, so L = 4) and 8, 12 or 16-octet tags
// (RFC 4309 §4, RFC 5282 §4).
type ccm struct {
	b        cipher.Block
	tagLen   int
	nonceLen int
	l        int // octets of the length field: 15 - nonceLen
}

// NewCCM returns CCM over b with the given tag length (4..16, even) and
// nonce length (7..13). b must have a 16-octet block.
func NewCCM(b cipher.Block, tagLen, nonceLen int) (cipher.AEAD, error) {
	if b.BlockSize() != 16 {
		return nil, errors.New("suite: CCM needs a 128-bit block cipher")
	}
	if tagLen < 4 || tagLen > 16 || tagLen%2 != 0 {
		return nil, errors.New("suite: CCM tag length must be 4, 6, ..., 16")
	}
	if nonceLen < 7 || nonceLen > 13 {
		return nil, errors.New("suite: CCM nonce length must be 7..13")
	}
	return &ccm{b: b, tagLen: tagLen, nonceLen: nonceLen, l: 15 - nonceLen}, nil
}

func (c *ccm) NonceSize() int { return c.nonceLen }
func (c *ccm) Overhead() int  { return c.tagLen }

// maxLen is the largest message the L-octet length field can express.
func (c *ccm) maxLen() uint64 {
	if c.l >= 8 {
		return 1<<63 - 1
	}
	return 1<<(8*uint(c.l)) - 1
}

// counter returns counter block A_i (RFC 3610 §2.3).
func (c *ccm) counter(nonce []byte, i uint64) [16]byte {
	var a [16]byte
	a[0] = byte(c.l - 1)
	copy(a[1:], nonce)
	for j := 0; j < c.l && j < 8; j++ {
		a[15-j] = byte(i >> (8 * j))
	}
	return a
}

// mac computes the unencrypted authentication tag T (RFC 3610 §2.2).
func (c *ccm) mac(nonce, msg, aad []byte) [16]byte {
	var x [16]byte
	flags := byte((c.tagLen-2)/2)<<3 | byte(c.l-1)
	if len(aad) > 0 {
		flags |= 0x40
	}
	x[0] = flags
	copy(x[1:], nonce)
	n := uint64(len(msg))
	for j := 0; j < c.l && j < 8; j++ {
		x[15-j] = byte(n >> (8 * j))
	}
	c.b.Encrypt(x[:], x[:])
	if len(aad) > 0 {
		// The associated data is prefixed with its encoded length.
		var hdr []byte
		switch a := uint64(len(aad)); {
		case a < 0xff00:
			hdr = binary.BigEndian.AppendUint16(nil, uint16(a))
		case a <= 0xffffffff:
			hdr = binary.BigEndian.AppendUint32([]byte{0xff, 0xfe}, uint32(a))
		default:
			hdr = binary.BigEndian.AppendUint64([]byte{0xff, 0xff}, a)
		}
		c.absorb(&x, hdr, aad)
	}
	c.absorb(&x, msg)
	return x
}

// absorb runs CBC-MAC over the concatenation of parts, zero-padded to a
// block boundary.
func (c *ccm) absorb(x *[16]byte, parts ...[]byte) {
	pos := 0
	for _, p := range parts {
		for len(p) > 0 {
			n := copy(x[pos:], xorInto(x[pos:], p))
			p = p[n:]
			pos += n
			if pos == 16 {
				c.b.Encrypt(x[:], x[:])
				pos = 0
			}
		}
	}
	if pos > 0 {
		c.b.Encrypt(x[:], x[:])
	}
}

// xorInto returns dst[:n] ^ src[:n] written into dst, n = min lengths.
func xorInto(dst, src []byte) []byte {
	n := min(len(dst), len(src))
	subtle.XORBytes(dst[:n], dst[:n], src[:n])
	return dst[:n]
}

func (c *ccm) Seal(dst, nonce, plaintext, aad []byte) []byte {
	if len(nonce) != c.nonceLen {
		panic("suite: CCM incorrect nonce length")
	}
	if uint64(len(plaintext)) > c.maxLen() {
		panic("suite: CCM message too long")
	}
	t := c.mac(nonce, plaintext, aad)
	ret, out := sliceForAppend(dst, len(plaintext)+c.tagLen)
	a1 := c.counter(nonce, 1)
	cipher.NewCTR(c.b, a1[:]).XORKeyStream(out, plaintext)
	a0 := c.counter(nonce, 0)
	var s0 [16]byte
	c.b.Encrypt(s0[:], a0[:])
	subtle.XORBytes(out[len(plaintext):], t[:c.tagLen], s0[:c.tagLen])
	return ret
}

var errCCMOpen = errors.New("suite: CCM message authentication failed")

func (c *ccm) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	if len(nonce) != c.nonceLen {
		return nil, errCCMOpen
	}
	if len(ciphertext) < c.tagLen || uint64(len(ciphertext)-c.tagLen) > c.maxLen() {
		return nil, errCCMOpen
	}
	ct, tag := ciphertext[:len(ciphertext)-c.tagLen], ciphertext[len(ciphertext)-c.tagLen:]
	a0 := c.counter(nonce, 0)
	var s0 [16]byte
	c.b.Encrypt(s0[:], a0[:])
	var want [16]byte
	subtle.XORBytes(want[:c.tagLen], tag, s0[:c.tagLen])
	ret, out := sliceForAppend(dst, len(ct))
	a1 := c.counter(nonce, 1)
	cipher.NewCTR(c.b, a1[:]).XORKeyStream(out, ct)
	t := c.mac(nonce, out, aad)
	if subtle.ConstantTimeCompare(t[:c.tagLen], want[:c.tagLen]) != 1 {
		clear(out)
		return nil, errCCMOpen
	}
	return ret, nil
}

// sliceForAppend extends in by n octets, reallocating if needed, and
// returns the whole slice and the new tail.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	return head, head[len(in):]
}
