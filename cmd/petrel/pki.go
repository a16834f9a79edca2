package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-vpn/petrel/cert"
)

func init() { subcommands = append(subcommands, newPKICmd) }

// Files in a CA folder made by `petrel pki ca` (or an intermediate made by
// `petrel pki issue --intermediate`).
const (
	caCertFile  = "ca.crt"
	caKeyFile   = "ca.key"
	caChainFile = "chain.crt" // certificates above ca.crt, root excluded
)

func newPKICmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pki",
		Short: "Make a test CA, issue gateway and client certificates, print certificates",
		Long: `pki is a small certificate authority for tests and first setups, like
strongSwan's pki tool: ECDSA P-256 keys by default (--rsa for RSA 3072),
PEM files, private keys written with mode 0600.

  petrel pki ca --cn "Example Root CA" --out ca/
  petrel pki issue --ca ca/ --cn gw.example.net --san gw.example.net --san 192.0.2.1 --out gw/
  petrel pki issue --ca ca/ --cn alice --san alice@example.net --client --out alice/
  petrel pki print gw/gw.example.net.crt`,
	}
	cmd.AddCommand(newPKICACmd(), newPKIIssueCmd(), newPKIPrintCmd())
	return cmd
}

type keyFlags struct {
	rsa, ed25519 bool
	days         int
}

func (k *keyFlags) add(cmd *cobra.Command, defDays int) {
	cmd.Flags().BoolVar(&k.rsa, "rsa", false, "RSA 3072 key instead of ECDSA P-256")
	cmd.Flags().BoolVar(&k.ed25519, "ed25519", false, "Ed25519 key instead of ECDSA P-256")
	cmd.Flags().IntVar(&k.days, "days", defDays, "validity in days")
}

func (k *keyFlags) keyType() (cert.KeyType, error) {
	switch {
	case k.rsa && k.ed25519:
		return 0, errors.New("--rsa and --ed25519 exclude each other")
	case k.rsa:
		return cert.KeyRSA3072, nil
	case k.ed25519:
		return cert.KeyEd25519, nil
	}
	return cert.KeyECDSAP256, nil
}

func newPKICACmd() *cobra.Command {
	var (
		cn, org, out string
		kf           keyFlags
	)
	cmd := &cobra.Command{
		Use:   "ca --cn NAME --out DIR",
		Short: "Make a self-signed root CA (DIR/ca.crt, DIR/ca.key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kt, err := kf.keyType()
			if err != nil {
				return err
			}
			ca, err := cert.NewCA(cert.Template{CN: cn, Org: org, Validity: days(kf.days)}, kt, time.Now())
			if err != nil {
				return err
			}
			if err := writeCredential(out, caCertFile, caKeyFile, ca.Cert, ca.Key); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "CA %s\n  certificate %s\n  key         %s (0600)\n",
				ca.Cert.Subject, filepath.Join(out, caCertFile), filepath.Join(out, caKeyFile))
			return nil
		},
	}
	cmd.Flags().StringVar(&cn, "cn", "", "common name of the CA (required)")
	cmd.Flags().StringVar(&org, "org", "", "organization (O=) of the subject")
	cmd.Flags().StringVar(&out, "out", "", "folder to write ca.crt and ca.key to (required)")
	kf.add(cmd, 10*365)
	cmd.MarkFlagRequired("cn")
	cmd.MarkFlagRequired("out")
	return cmd
}

func newPKIIssueCmd() *cobra.Command {
	var (
		caDir, cn, org, out     string
		sans, crlURLs, ocspURLs []string
		client, intermediate    bool
		kf                      keyFlags
	)
	cmd := &cobra.Command{
		Use:   "issue --ca DIR --cn NAME [--san NAME]... [--client] [--rsa] --out DIR",
		Short: "Issue a gateway, client or intermediate CA certificate",
		Long: `issue signs a certificate with the CA in --ca. A gateway certificate (the
default) carries the serverAuth and ipsecIKE extended key usages, a --client
one clientAuth. Each --san is a DNS name, an IP address or an email address
(prefixes dns:, ip: and email: force the kind); without --san the CN is used.
The certificate goes to DIR/NAME.crt, its key to DIR/NAME.key (0600) and the
intermediates to send with it to DIR/NAME.chain.crt. With --intermediate the
result is a CA folder (ca.crt, ca.key, chain.crt) usable as --ca.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kt, err := kf.keyType()
			if err != nil {
				return err
			}
			ca, chain, err := loadCA(caDir)
			if err != nil {
				return err
			}
			tmpl := cert.Template{CN: cn, Org: org, Client: client, IsCA: intermediate, Validity: days(kf.days),
				CRLURLs: crlURLs, OCSPURLs: ocspURLs}
			if len(sans) == 0 && !intermediate {
				sans = []string{cn}
			}
			for _, s := range sans {
				if err := addSAN(&tmpl, s); err != nil {
					return err
				}
			}
			c, key, err := ca.Issue(tmpl, kt, time.Now())
			if err != nil {
				return err
			}
			// Intermediates to send: the issuing CA unless it is a root, and
			// what is above it.
			if !isSelfSigned(ca.Cert) {
				chain = append([]*x509.Certificate{ca.Cert}, chain...)
			}
			w := cmd.OutOrStdout()
			if intermediate {
				if err := writeCredential(out, caCertFile, caKeyFile, c, key); err != nil {
					return err
				}
				if err := writeFile(filepath.Join(out, caChainFile), cert.MarshalCertificatePEM(chain...), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(w, "intermediate CA %s in %s\n", c.Subject, out)
				return nil
			}
			name := fileName(cn)
			if err := writeCredential(out, name+".crt", name+".key", c, key); err != nil {
				return err
			}
			fmt.Fprintf(w, "%s, issued by %s\n  certificate %s\n  key         %s (0600)\n", c.Subject, c.Issuer,
				filepath.Join(out, name+".crt"), filepath.Join(out, name+".key"))
			if len(chain) > 0 {
				p := filepath.Join(out, name+".chain.crt")
				if err := writeFile(p, cert.MarshalCertificatePEM(chain...), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(w, "  chain       %s\n", p)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&caDir, "ca", "", "CA folder (ca.crt, ca.key) to sign with (required)")
	cmd.Flags().StringVar(&cn, "cn", "", "common name (required)")
	cmd.Flags().StringVar(&org, "org", "", "organization (O=) of the subject")
	cmd.Flags().StringArrayVar(&sans, "san", nil, "subjectAltName: DNS name, IP address or email (repeatable)")
	cmd.Flags().BoolVar(&client, "client", false, "client certificate (EKU clientAuth) instead of a gateway one")
	cmd.Flags().BoolVar(&intermediate, "intermediate", false, "issue an intermediate CA into --out")
	cmd.Flags().StringArrayVar(&crlURLs, "crl", nil, "CRL distribution point URL (repeatable)")
	cmd.Flags().StringArrayVar(&ocspURLs, "ocsp", nil, "OCSP responder URL (repeatable)")
	cmd.Flags().StringVar(&out, "out", "", "folder to write to (required)")
	kf.add(cmd, 2*365)
	cmd.MarkFlagRequired("ca")
	cmd.MarkFlagRequired("cn")
	cmd.MarkFlagRequired("out")
	return cmd
}

func newPKIPrintCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "print FILE",
		Short: "Print the certificates in a PEM or DER file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := cert.LoadCertificates(args[0])
			if err != nil {
				return err
			}
			return printCerts(cmd.OutOrStdout(), cs)
		},
	}
}

func printCerts(w io.Writer, cs []*x509.Certificate) error {
	for i, c := range cs {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if _, err := io.WriteString(w, cert.Describe(c)); err != nil {
			return err
		}
	}
	return nil
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// addSAN adds a subjectAltName, guessing its kind as strongSwan's pki does.
func addSAN(t *cert.Template, s string) error {
	kind, v, ok := strings.Cut(s, ":")
	if !ok || (kind != "dns" && kind != "ip" && kind != "email") {
		kind, v = "", s
	}
	if a, err := netip.ParseAddr(v); (kind == "" || kind == "ip") && err == nil {
		t.IPs = append(t.IPs, a)
		return nil
	} else if kind == "ip" {
		return fmt.Errorf("--san %q: %w", s, err)
	}
	switch {
	case kind == "email" || (kind == "" && strings.Contains(v, "@")):
		t.Emails = append(t.Emails, v)
	case v == "" || strings.ContainsAny(v, " /@"):
		return fmt.Errorf("--san %q is no DNS name, IP address or email", s)
	default:
		t.DNS = append(t.DNS, v)
	}
	return nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// fileName makes a CN safe as a file name.
func fileName(cn string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 || r == ' ' {
			return '_'
		}
		return r
	}, strings.TrimLeft(cn, "."))
}

func loadCA(dir string) (*cert.CA, []*x509.Certificate, error) {
	cs, err := cert.LoadCertificates(filepath.Join(dir, caCertFile))
	if err != nil {
		return nil, nil, err
	}
	key, err := cert.LoadPrivateKey(filepath.Join(dir, caKeyFile))
	if err != nil {
		return nil, nil, err
	}
	ca := &cert.CA{Cert: cs[0], Key: key}
	if _, err := cert.NewCredential(ca.Cert, nil, key); err != nil {
		return nil, nil, err
	}
	if !ca.Cert.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", filepath.Join(dir, caCertFile))
	}
	var chain []*x509.Certificate
	if _, err := os.Stat(filepath.Join(dir, caChainFile)); err == nil {
		if data, err := os.ReadFile(filepath.Join(dir, caChainFile)); err == nil && len(bytes.TrimSpace(data)) > 0 {
			if chain, err = cert.ParseCertificates(data); err != nil {
				return nil, nil, err
			}
		}
	}
	return ca, chain, nil
}

// writeCredential writes a certificate (0644) and its key (0600, never
// over an existing file) into dir.
func writeCredential(dir, certName, keyName string, c *x509.Certificate, key crypto.Signer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pemKey, err := cert.MarshalPrivateKeyPEM(key)
	if err != nil {
		return err
	}
	defer clear(pemKey)
	if err := writeFile(filepath.Join(dir, keyName), pemKey, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, certName), cert.MarshalCertificatePEM(c), 0o644)
}

// writeFile creates path exclusively with mode perm, so that a key is never
// silently replaced and never exists with looser permissions.
func writeFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
