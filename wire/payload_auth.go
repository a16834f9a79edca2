package wire

// Auth is the Authentication payload (RFC 7296 §3.8). For method 14
// (RFC 7427 §3) Data starts with the ASN.1 Length and AlgorithmIdentifier;
// this package does not split it.
type Auth struct {
	Method AuthMethod
	Data   []byte
}

func (*Auth) Type() PayloadType { return PayloadAUTH }
func (a *Auth) BodyLen() int    { return 4 + len(a.Data) }
func (a *Auth) AppendBody(b []byte) []byte {
	return append(append(b, byte(a.Method), 0, 0, 0), a.Data...)
}

// ParseAuth parses an AUTH payload body.
func ParseAuth(b []byte) (*Auth, error) {
	if len(b) < 4 {
		return nil, errTruncated("AUTH payload", 4, len(b))
	}
	return &Auth{Method: AuthMethod(b[0]), Data: orNil(b[4:])}, nil
}
