package cert

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// CredentialFiles names where one local credential lives: either Cert and
// Key (PEM or DER; Cert may hold the chain after the end-entity
// certificate) plus optional Chain files, or a PKCS12 file.
type CredentialFiles struct {
	Cert     string
	Key      string
	Chain    []string
	PKCS12   string
	Password string // for PKCS12; never logged
	HashURL  string // see Credential.HashURL
}

// Files is what a Store is loaded from: credentials and trust anchors
// (files, or folders whose every file is read).
type Files struct {
	Credentials []CredentialFiles
	Anchors     []string
}

// LoadFiles reads every credential and anchor. It fails as a whole, naming
// the file at fault.
func LoadFiles(f Files) ([]*Credential, []*x509.Certificate, error) {
	var creds []*Credential
	for _, cf := range f.Credentials {
		c, err := loadCredential(cf)
		if err != nil {
			return nil, nil, err
		}
		creds = append(creds, c)
	}
	var anchors []*x509.Certificate
	for _, a := range f.Anchors {
		paths := []string{a}
		if st, err := os.Stat(a); err == nil && st.IsDir() {
			ents, err := os.ReadDir(a)
			if err != nil {
				return nil, nil, fmt.Errorf("cert: %w", err)
			}
			paths = paths[:0]
			for _, e := range ents {
				if e.Type().IsRegular() {
					paths = append(paths, filepath.Join(a, e.Name()))
				}
			}
			sort.Strings(paths)
		}
		for _, p := range paths {
			cs, err := LoadCertificates(p)
			if err != nil {
				return nil, nil, err
			}
			for _, c := range cs {
				if !c.IsCA {
					return nil, nil, fmt.Errorf("cert: trust anchor %q in %s is not a CA certificate", c.Subject, p)
				}
			}
			anchors = append(anchors, cs...)
		}
	}
	return creds, anchors, nil
}

func loadCredential(cf CredentialFiles) (*Credential, error) {
	var cred *Credential
	switch {
	case cf.PKCS12 != "":
		data, err := os.ReadFile(cf.PKCS12)
		if err != nil {
			return nil, fmt.Errorf("cert: %w", err)
		}
		key, c, chain, err := ParsePKCS12(data, cf.Password)
		clear(data)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, cf.PKCS12)
		}
		// Anchors in a PKCS#12 file are not sent as intermediates.
		var inter []*x509.Certificate
		for _, x := range chain {
			if !isSelfSigned(x) {
				inter = append(inter, x)
			}
		}
		cred = &Credential{Cert: c, Chain: inter, Key: key}
	case cf.Cert != "" && cf.Key != "":
		cs, err := LoadCertificates(cf.Cert)
		if err != nil {
			return nil, err
		}
		for _, p := range cf.Chain {
			more, err := LoadCertificates(p)
			if err != nil {
				return nil, err
			}
			cs = append(cs, more...)
		}
		key, err := LoadPrivateKey(cf.Key)
		if err != nil {
			return nil, err
		}
		if cred, err = NewCredential(cs[0], cs[1:], key); err != nil {
			return nil, fmt.Errorf("%w (%s, %s)", err, cf.Cert, cf.Key)
		}
	default:
		return nil, errors.New("cert: a credential needs cert and key files, or a PKCS#12 file")
	}
	cred.HashURL = cf.HashURL
	return cred, nil
}

// Reload reads f and, only if everything loads, replaces the store's
// contents (`petrel reload`): on error the store keeps what it had.
func (s *Store) Reload(f Files) error {
	creds, anchors, err := LoadFiles(f)
	if err != nil {
		return err
	}
	s.Replace(creds, anchors)
	return nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return string(c.RawIssuer) == string(c.RawSubject) && c.CheckSignatureFrom(c) == nil
}
