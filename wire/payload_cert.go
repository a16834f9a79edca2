package wire

// Cert is the Certificate payload (RFC 7296 §3.6).
type Cert struct {
	Encoding CertEncoding
	Data     []byte
}

func (*Cert) Type() PayloadType { return PayloadCERT }
func (c *Cert) BodyLen() int    { return 1 + len(c.Data) }
func (c *Cert) AppendBody(b []byte) []byte {
	return append(append(b, byte(c.Encoding)), c.Data...)
}

// ParseCert parses a CERT payload body.
func ParseCert(b []byte) (*Cert, error) {
	if len(b) < 1 {
		return nil, errTruncated("CERT payload", 1, 0)
	}
	return &Cert{Encoding: CertEncoding(b[0]), Data: orNil(b[1:])}, nil
}

// CertReq is the Certificate Request payload (RFC 7296 §3.7). For X.509
// encodings Data is a concatenation of 20-octet SHA-1 hashes of trusted CA
// public keys; see Authorities.
type CertReq struct {
	Encoding CertEncoding
	Data     []byte
}

func (*CertReq) Type() PayloadType { return PayloadCERTREQ }
func (c *CertReq) BodyLen() int    { return 1 + len(c.Data) }
func (c *CertReq) AppendBody(b []byte) []byte {
	return append(append(b, byte(c.Encoding)), c.Data...)
}

// certReqHashLen is the SHA-1 length of a Certification Authority entry
// (RFC 7296 §3.7).
const certReqHashLen = 20

// Authorities splits Data into 20-octet CA key hashes (RFC 7296 §3.7). It
// returns ok=false if Data is not a multiple of 20 octets.
func (c *CertReq) Authorities() (hashes [][]byte, ok bool) {
	if len(c.Data)%certReqHashLen != 0 {
		return nil, false
	}
	for d := c.Data; len(d) > 0; d = d[certReqHashLen:] {
		hashes = append(hashes, d[:certReqHashLen])
	}
	return hashes, true
}

// ParseCertReq parses a CERTREQ payload body.
func ParseCertReq(b []byte) (*CertReq, error) {
	if len(b) < 1 {
		return nil, errTruncated("CERTREQ payload", 1, 0)
	}
	return &CertReq{Encoding: CertEncoding(b[0]), Data: orNil(b[1:])}, nil
}
