package config

import (
	"crypto/x509"
	"path/filepath"
	"slices"
	"strings"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/wire"
)

// Certificate authentication (auth: pubkey, RFC 7296 §2.15, RFC 7427).
//
//	local:
//	  auth: pubkey
//	  id: fqdn:gw.example.net     # optional: the certificate's subject DN otherwise
//	  certs: [gw.pem, inter.pem]  # end-entity first, then intermediates sent as extra CERTs
//	  key: gw.key                 # PEM or DER: PKCS#8, PKCS#1, SEC 1
//	  cert_url: http://certs.example.net/gw.der  # hash-and-URL (RFC 7296 §3.6), optional
//	  rsa_pss: yes                # RSASSA-PSS rather than PKCS#1 v1.5 under RFC 7427
//	remote:
//	  auth: pubkey
//	  cacerts: [ca.pem]           # trust anchors (files or folders)
//	  revocation: lenient         # none, lenient, ifuri or strict (CRL/OCSP unreachable)
//	  eku: [ipsec_ike, server_auth]   # one of these if the certificate has an EKU extension
//	  methods: [digital_signature, rsa, ecdsa256, ecdsa384, ecdsa521]
//	  signatures: [ecdsa-sha256, rsa-pss-sha256, ed25519, ...]  # RFC 7427 schemes
//	  hash_url: yes               # fetch peers' hash-and-URL certificates
//
// Files are read at load time (and again on `petrel reload`); a relative
// path is taken from the configuration file's folder.

var (
	localPubkeyKeys  = []string{"certs", "key", "cert_url", "rsa_pss"}
	remotePubkeyKeys = []string{"cacerts", "revocation", "eku", "methods", "signatures", "hash_url"}
)

// Pubkey is one side's certificate settings, with the files already read.
type Pubkey struct {
	// local
	CertFiles   []string
	KeyFile     string
	CertURL     string
	RSAPSS      bool
	Credentials []*cert.Credential
	// remote
	CAFiles    []string
	Anchors    []*x509.Certificate
	Revocation string // none, lenient, ifuri or strict
	EKUs       []cert.EKU
	Methods    []wire.AuthMethod // nil: cert.DefaultMethods
	Schemes    []cert.Scheme     // nil: cert.DefaultSchemes
	HashURL    bool
}

var ekuNames = map[string]cert.EKU{"server_auth": cert.EKUServerAuth, "client_auth": cert.EKUClientAuth,
	"ipsec_ike": cert.EKUIPsecIKE, "any": cert.EKUAny, "ike_intermediate": cert.EKUIKEIntermediate}

var methodNames = map[string]wire.AuthMethod{"digital_signature": wire.AuthDigitalSignature, "rsa": wire.AuthRSASignature,
	"ecdsa256": wire.AuthECDSA256, "ecdsa384": wire.AuthECDSA384, "ecdsa521": wire.AuthECDSA521}

func schemeByName(s string) (cert.Scheme, bool) {
	for sc := cert.SchemeRSAPKCS1SHA1; sc <= cert.SchemeEd25519; sc++ {
		if strings.EqualFold(sc.String(), s) {
			return sc, true
		}
	}
	return 0, false
}

func (d *decoder) path(s string) string {
	if filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(d.dir, s)
}

// pubkey decodes and loads the pubkey fields of local: or remote:.
func (d *decoder) pubkey(e entry, f map[string]entry, a *Auth, local bool) error {
	p := &Pubkey{Revocation: "lenient"}
	a.Pubkey = p
	if local {
		ce, ok := f["certs"]
		if !ok {
			return d.errf(e.val, e.path, "auth: pubkey needs certs:; expected the certificate file (then its intermediates)")
		}
		items, err := d.strList(ce)
		if err != nil {
			return err
		}
		ke, ok := f["key"]
		if !ok {
			return d.errf(e.val, e.path, "auth: pubkey needs key:; expected the private key file")
		}
		key, err := d.str(ke)
		if err != nil {
			return err
		}
		cf := cert.CredentialFiles{Key: d.path(key)}
		for i, it := range items {
			p.CertFiles = append(p.CertFiles, d.path(it.val))
			if i == 0 {
				cf.Cert = d.path(it.val)
			} else {
				cf.Chain = append(cf.Chain, d.path(it.val))
			}
		}
		p.KeyFile = cf.Key
		if ue, ok := f["cert_url"]; ok {
			if p.CertURL, err = d.str(ue); err != nil {
				return err
			}
			if !strings.HasPrefix(p.CertURL, "http://") {
				return d.errf(ue.val, ue.path, "%q: expected an http:// URL (RFC 7296 §3.6)", p.CertURL)
			}
			cf.HashURL = p.CertURL
		}
		if re, ok := f["rsa_pss"]; ok {
			if p.RSAPSS, err = d.boolean(re); err != nil {
				return err
			}
		}
		creds, _, err := cert.LoadFiles(cert.Files{Credentials: []cert.CredentialFiles{cf}})
		if err != nil {
			return d.errf(ce.val, ce.path, "%v; expected readable PEM or DER files (relative to this config file)", err)
		}
		p.Credentials = creds
		return nil
	}
	ce, ok := f["cacerts"]
	if !ok {
		return d.errf(e.val, e.path, "auth: pubkey needs cacerts:; expected the trust anchors (CA certificate files or folders)")
	}
	items, err := d.strList(ce)
	if err != nil {
		return err
	}
	for _, it := range items {
		p.CAFiles = append(p.CAFiles, d.path(it.val))
	}
	if _, p.Anchors, err = cert.LoadFiles(cert.Files{Anchors: p.CAFiles}); err != nil {
		return d.errf(ce.val, ce.path, "%v; expected readable PEM or DER certificates (relative to this config file)", err)
	}
	if len(p.Anchors) == 0 {
		return d.errf(ce.val, ce.path, "no certificate found; expected at least one trust anchor")
	}
	if re, ok := f["revocation"]; ok {
		if p.Revocation, err = d.oneOf(re, "none", "lenient", "ifuri", "strict"); err != nil {
			return err
		}
	}
	if ee, ok := f["eku"]; ok {
		items, err := d.commaList(ee)
		if err != nil {
			return err
		}
		for _, it := range items {
			k, ok := ekuNames[it.val]
			if !ok {
				return d.errf(it.node, it.path, "%q: unknown extended key usage; expected ipsec_ike, server_auth, client_auth, ike_intermediate or any", it.val)
			}
			p.EKUs = append(p.EKUs, k)
		}
	}
	if me, ok := f["methods"]; ok {
		items, err := d.commaList(me)
		if err != nil {
			return err
		}
		for _, it := range items {
			m, ok := methodNames[it.val]
			if !ok {
				return d.errf(it.node, it.path, "%q: unknown AUTH method; expected digital_signature, rsa, ecdsa256, ecdsa384 or ecdsa521", it.val)
			}
			p.Methods = append(p.Methods, m)
		}
	}
	if se, ok := f["signatures"]; ok {
		items, err := d.commaList(se)
		if err != nil {
			return err
		}
		for _, it := range items {
			s, ok := schemeByName(it.val)
			if !ok {
				return d.errf(it.node, it.path, "%q: unknown signature scheme; expected one like ecdsa-sha256, rsa-pss-sha256, rsa-pkcs1-sha256 or ed25519", it.val)
			}
			p.Schemes = append(p.Schemes, s)
		}
	}
	if he, ok := f["hash_url"]; ok {
		if p.HashURL, err = d.boolean(he); err != nil {
			return err
		}
	}
	return nil
}

// unreachable maps the revocation: setting; ok is false for none.
func (p *Pubkey) unreachable() (cert.UnreachablePolicy, bool) {
	switch p.Revocation {
	case "strict":
		return cert.Strict, true
	case "ifuri":
		return cert.IfURI, true
	case "none":
		return 0, false
	}
	return cert.Lenient, true
}

// Same reports whether two loads of pubkey settings are equal: the same
// settings and the same certificates (and so keys) and trust anchors. The
// daemon's reload uses it, since the loaded objects hold caches that
// reflect.DeepEqual cannot compare. Nil equals only nil.
func (p *Pubkey) Same(o *Pubkey) bool {
	if p == nil || o == nil {
		return p == o
	}
	if p.CertURL != o.CertURL || p.RSAPSS != o.RSAPSS || p.Revocation != o.Revocation || p.HashURL != o.HashURL ||
		!slices.Equal(p.EKUs, o.EKUs) || !slices.Equal(p.Methods, o.Methods) || !slices.Equal(p.Schemes, o.Schemes) ||
		len(p.Credentials) != len(o.Credentials) || !sameCerts(p.Anchors, o.Anchors) {
		return false
	}
	for i, c := range p.Credentials {
		d := o.Credentials[i]
		if !c.Cert.Equal(d.Cert) || !sameCerts(c.Chain, d.Chain) || c.HashURL != d.HashURL {
			return false
		}
	}
	return true
}

func sameCerts(a, b []*x509.Certificate) bool {
	return slices.EqualFunc(a, b, func(x, y *x509.Certificate) bool { return x.Equal(y) })
}
