package cert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"golang.org/x/crypto/pkcs12"
)

// ParseCertificates reads every certificate in data: PEM (all CERTIFICATE
// blocks, other blocks skipped) or one or more concatenated DER
// certificates.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		var out []*x509.Certificate
		for rest := data; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("cert: PEM certificate %d: %w", len(out)+1, err)
			}
			out = append(out, c)
		}
		if len(out) == 0 {
			return nil, errors.New("cert: no CERTIFICATE block in PEM data")
		}
		return out, nil
	}
	cs, err := x509.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("cert: DER certificate: %w", err)
	}
	if len(cs) == 0 {
		return nil, errors.New("cert: no certificate in DER data")
	}
	return cs, nil
}

// ParsePrivateKey reads a private key from PEM or DER: PKCS#8, PKCS#1 RSA or
// SEC 1 EC. Encrypted PEM is refused. Errors never include key octets.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	der := data
	if bytes.Contains(data, []byte("-----BEGIN")) {
		der = nil
		for rest := data; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			switch b.Type {
			case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
				if _, enc := b.Headers["DEK-Info"]; enc {
					return nil, errors.New("cert: encrypted PEM keys are not supported")
				}
				der = b.Bytes
			case "ENCRYPTED PRIVATE KEY":
				return nil, errors.New("cert: encrypted PKCS#8 keys are not supported")
			}
			if der != nil {
				break
			}
		}
		if der == nil {
			return nil, errors.New("cert: no private key block in PEM data")
		}
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return asSigner(k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("cert: private key is not PKCS#8, PKCS#1 or SEC 1")
}

func asSigner(k any) (crypto.Signer, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("cert: unsupported private key type %T", k)
}

// ParsePKCS12 reads a PKCS#12 file: the private key, the certificate that
// matches it and the other certificates (the chain). golang.org/x/crypto/
// pkcs12 decodes only the legacy PBE ciphers (3DES, RC2); files from
// OpenSSL 3 need `openssl pkcs12 -export -legacy`.
func ParsePKCS12(data []byte, password string) (crypto.Signer, *x509.Certificate, []*x509.Certificate, error) {
	blocks, err := pkcs12.ToPEM(data, password)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cert: PKCS#12: %w", err)
	}
	var (
		key   crypto.Signer
		certs []*x509.Certificate
	)
	for _, b := range blocks {
		switch b.Type {
		case "PRIVATE KEY":
			if key, err = ParsePrivateKey(b.Bytes); err != nil {
				return nil, nil, nil, err
			}
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("cert: PKCS#12 certificate: %w", err)
			}
			certs = append(certs, c)
		}
	}
	if key == nil {
		return nil, nil, nil, errors.New("cert: PKCS#12 holds no private key")
	}
	for i, c := range certs {
		if keyMatches(c.PublicKey, key.Public()) {
			chain := append(append([]*x509.Certificate{}, certs[:i]...), certs[i+1:]...)
			return key, c, chain, nil
		}
	}
	return nil, nil, nil, errors.New("cert: PKCS#12 holds no certificate for its private key")
}

func keyMatches(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// LoadCertificates reads certificates from a PEM or DER file.
func LoadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cert: %w", err)
	}
	cs, err := ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return cs, nil
}

// LoadPrivateKey reads a private key from a PEM or DER file.
func LoadPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cert: %w", err)
	}
	defer clear(data)
	k, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return k, nil
}
