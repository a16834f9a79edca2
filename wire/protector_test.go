package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/fnv"
)

// xorProtector is a test Protector with the layout of an encrypt-then-MAC
// suite (RFC 7296 §3.14): IV (8) | XOR-"encrypted" plaintext, padding and
// Pad Length, padded to a 4-octet block | ICV (8, FNV-64a over the message
// up to the ICV). It is no cipher; it lets tests check where wire puts the
// octets and what the ICV covers. Each call records the AAD extent it saw.
type xorProtector struct {
	key    byte
	seals  int
	opens  int
	lastAD []byte // the octets before the body in the last Seal/Open
}

const (
	xorIVLen    = 8
	xorICVLen   = 8
	xorBlockLen = 4
)

func (x *xorProtector) SealedLen(n int) int {
	padded := (n + 1 + xorBlockLen - 1) / xorBlockLen * xorBlockLen
	return xorIVLen + padded + xorICVLen
}

func (x *xorProtector) icv(b []byte) []byte {
	h := fnv.New64a()
	h.Write([]byte{x.key})
	h.Write(b)
	return h.Sum(nil)
}

func (x *xorProtector) Seal(msg []byte, bodyOff int, plain []byte) error {
	if len(msg)-bodyOff != x.SealedLen(len(plain)) {
		return errors.New("xor: wrong body length")
	}
	x.seals++
	x.lastAD = bytes.Clone(msg[:bodyOff])
	body := msg[bodyOff:]
	binary.BigEndian.PutUint64(body, uint64(x.seals)) // IV
	ct := body[xorIVLen : len(body)-xorICVLen]
	padLen := len(ct) - len(plain) - 1
	copy(ct, plain)
	for i := len(plain); i < len(ct)-1; i++ {
		ct[i] = byte(i)
	}
	ct[len(ct)-1] = byte(padLen)
	for i := range ct {
		ct[i] ^= x.key
	}
	copy(body[len(body)-xorICVLen:], x.icv(msg[:len(msg)-xorICVLen]))
	return nil
}

func (x *xorProtector) Open(msg []byte, bodyOff int) ([]byte, error) {
	body := msg[bodyOff:]
	if len(body) < xorIVLen+xorBlockLen+xorICVLen || (len(body)-xorIVLen-xorICVLen)%xorBlockLen != 0 {
		return nil, errors.New("xor: bad body length")
	}
	if !bytes.Equal(body[len(body)-xorICVLen:], x.icv(msg[:len(msg)-xorICVLen])) {
		return nil, errors.New("xor: ICV mismatch")
	}
	x.opens++
	x.lastAD = bytes.Clone(msg[:bodyOff])
	ct := body[xorIVLen : len(body)-xorICVLen]
	pt := make([]byte, len(ct))
	for i := range ct {
		pt[i] = ct[i] ^ x.key
	}
	padLen := int(pt[len(pt)-1])
	if padLen+1 > len(pt) {
		return nil, errors.New("xor: bad pad length")
	}
	return pt[:len(pt)-1-padLen], nil
}
