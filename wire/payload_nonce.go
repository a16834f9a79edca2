package wire

// Nonce bounds (RFC 7296 §3.9): "The size of the Nonce Data MUST be between
// 16 and 256 octets, inclusive."
const (
	MinNonceLen = 16
	MaxNonceLen = 256
)

// Nonce is the Nonce payload, Ni or Nr (RFC 7296 §3.9).
type Nonce struct {
	Data []byte
}

func (*Nonce) Type() PayloadType            { return PayloadNonce }
func (n *Nonce) BodyLen() int               { return len(n.Data) }
func (n *Nonce) AppendBody(b []byte) []byte { return append(b, n.Data...) }

// ParseNonce parses a Nonce payload body, enforcing the 16..256 octet bound.
func ParseNonce(b []byte) (*Nonce, error) {
	if len(b) < MinNonceLen || len(b) > MaxNonceLen {
		return nil, errSyntax("nonce of %d octets, want %d..%d (RFC 7296 §3.9)", len(b), MinNonceLen, MaxNonceLen)
	}
	return &Nonce{Data: b}, nil
}
