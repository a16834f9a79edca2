package cert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"time"
)

// KeyType is the kind of key GenerateKey makes.
type KeyType int

// Key types; the zero value is ECDSA P-256.
const (
	KeyECDSAP256 KeyType = iota
	KeyECDSAP384
	KeyECDSAP521
	KeyRSA2048
	KeyRSA3072
	KeyEd25519
)

// GenerateKey makes a fresh private key.
func GenerateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case KeyECDSAP521:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyRSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case KeyEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("cert: unknown key type %d", kt)
}

// MarshalPrivateKeyPEM encodes a key as strongSwan and OpenSSL read it:
// SEC 1 "EC PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY", PKCS#8 for Ed25519.
// Write the result with mode 0600.
func MarshalPrivateKeyPEM(k crypto.Signer) ([]byte, error) {
	var b *pem.Block
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("cert: %w", err)
		}
		b = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	case *rsa.PrivateKey:
		b = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	default:
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("cert: %w", err)
		}
		b = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	return pem.EncodeToMemory(b), nil
}

// MarshalCertificatePEM encodes certificates as PEM.
func MarshalCertificatePEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// CA is a certificate authority able to issue certificates: a root made by
// NewCA or an intermediate issued with Template.IsCA.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Template describes a certificate to issue.
type Template struct {
	CN  string
	Org string // optional O= in the subject
	// Subject alternative names (RFC 4945 §5.1.3.3–.4: the IKE identities).
	DNS    []string
	IPs    []netip.Addr
	Emails []string
	// Client issues a client certificate (EKU clientAuth); otherwise a
	// gateway certificate (EKU serverAuth, ipsecIKE per RFC 4945
	// §5.1.3.12 and iKEIntermediate, as strongSwan's `pki --flag serverAuth
	// --flag ikeIntermediate` makes for Windows and macOS clients).
	Client bool
	// IsCA issues an intermediate CA.
	IsCA      bool
	NotBefore time.Time     // zero: now minus one hour
	Validity  time.Duration // zero: 5 years for CAs, 2 years otherwise
	// Revocation pointers (RFC 5280 §4.2.1.13, §4.2.2.1).
	CRLURLs, OCSPURLs []string
	// KeyUsage and ExtKeyUsage override the defaults when not zero.
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
}

func randomSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("cert: serial: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func (t *Template) x509(now time.Time) (*x509.Certificate, error) {
	if t.CN == "" {
		return nil, errors.New("cert: certificate needs a CN")
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	nb := t.NotBefore
	if nb.IsZero() {
		nb = now.Add(-time.Hour)
	}
	validity := t.Validity
	if validity == 0 {
		validity = 2 * 365 * 24 * time.Hour
		if t.IsCA {
			validity = 5 * 365 * 24 * time.Hour
		}
	}
	subj := pkix.Name{CommonName: t.CN}
	if t.Org != "" {
		subj.Organization = []string{t.Org}
	}
	x := &x509.Certificate{
		SerialNumber: serial, Subject: subj, NotBefore: nb, NotAfter: nb.Add(validity),
		DNSNames: t.DNS, EmailAddresses: t.Emails,
		CRLDistributionPoints: t.CRLURLs, OCSPServer: t.OCSPURLs,
		BasicConstraintsValid: true, IsCA: t.IsCA,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: t.ExtKeyUsage,
	}
	for _, a := range t.IPs {
		x.IPAddresses = append(x.IPAddresses, a.Unmap().AsSlice())
	}
	switch {
	case t.IsCA:
		x.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	case t.ExtKeyUsage != nil:
	case t.Client:
		x.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		x.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		x.UnknownExtKeyUsage = append(x.UnknownExtKeyUsage, oidIPsecIKE, oidIKEIntermediate)
	}
	if t.KeyUsage != 0 {
		x.KeyUsage = t.KeyUsage
	}
	return x, nil
}

// NewCA makes a self-signed root CA with a fresh key of type kt.
func NewCA(t Template, kt KeyType, now time.Time) (*CA, error) {
	t.IsCA = true
	key, err := GenerateKey(kt)
	if err != nil {
		return nil, err
	}
	x, err := t.x509(now)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, x, x, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("cert: creating CA: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cert: %w", err)
	}
	return &CA{Cert: c, Key: key}, nil
}

// Issue signs a certificate for a fresh key of type kt.
func (ca *CA) Issue(t Template, kt KeyType, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := GenerateKey(kt)
	if err != nil {
		return nil, nil, err
	}
	c, err := ca.IssueFor(t, key.Public(), now)
	return c, key, err
}

// IssueFor signs a certificate for an existing public key.
func (ca *CA) IssueFor(t Template, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	x, err := t.x509(now)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, x, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("cert: issuing %q: %w", t.CN, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cert: %w", err)
	}
	return c, nil
}

// Describe renders a certificate for `petrel pki print` and logs: subject,
// issuer, serial, validity, key, SANs, key usages and revocation pointers.
func Describe(c *x509.Certificate) string {
	s := fmt.Sprintf("subject:  %s\nissuer:   %s\nserial:   %x\nvalidity: %s .. %s\nkey:      %s\n",
		c.Subject, c.Issuer, c.SerialNumber, c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), keyDesc(c.PublicKey))
	if c.IsCA {
		s += "CA:       yes\n"
	}
	for _, d := range c.DNSNames {
		s += "altName:  DNS:" + d + "\n"
	}
	for _, ip := range c.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			s += "altName:  IP:" + a.Unmap().String() + "\n"
		}
	}
	for _, e := range c.EmailAddresses {
		s += "altName:  email:" + e + "\n"
	}
	var ekus []string
	for _, e := range []EKU{EKUServerAuth, EKUClientAuth, EKUIPsecIKE, EKUIKEIntermediate, EKUAny} {
		if hasEKU(c, e) {
			ekus = append(ekus, e.String())
		}
	}
	if len(ekus) > 0 {
		s += fmt.Sprintf("EKU:      %v\n", ekus)
	}
	for _, u := range c.CRLDistributionPoints {
		s += "CRL:      " + u + "\n"
	}
	for _, u := range c.OCSPServer {
		s += "OCSP:     " + u + "\n"
	}
	h := SPKIHash(c)
	return s + fmt.Sprintf("keyid:    %x (SHA-1 of SubjectPublicKeyInfo, as in CERTREQ)\n", h)
}

func keyDesc(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}
