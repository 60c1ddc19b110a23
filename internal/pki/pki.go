// Package pki holds the cluster's certificate authority and the join
// tokens that let an agent enrol: CA creation, node and server
// certificates, CSRs, and the pin an agent checks the CA against.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// ServerName is the name in every coordinator's gRPC certificate; agents
// verify it instead of an address, so any coordinator can be dialled.
const ServerName = "coordinator.proximity"

// CA is the cluster's certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// CertDER and KeyDER are the stored forms.
	CertDER, KeyDER []byte
}

// NewCA creates a CA valid for ten years.
func NewCA(now time.Time) (*CA, error) {
	key, err := NewKey()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Proximity cluster CA", Organization: []string{"Proximity"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return LoadCA(der, keyDER)
}

// LoadCA parses a stored CA.
func LoadCA(certDER, keyDER []byte) (*CA, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	key, err := x509.ParseECPrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertDER: certDER, KeyDER: keyDER}, nil
}

// Pin is the hex SHA-256 of a CA certificate.
func Pin(caDER []byte) string {
	sum := sha256.Sum256(caDER)
	return hex.EncodeToString(sum[:])
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return n
}

// ClockSkew is how far before its issue time a certificate is valid, so
// that a clock slightly behind still accepts it.
const ClockSkew = time.Minute

// Issued is when a certificate made here was issued.
func Issued(c *x509.Certificate) time.Time { return c.NotBefore.Add(ClockSkew) }

// SignNode signs a CSR as node name's client certificate. The CSR's own
// subject is ignored: the identity is the node the join token was used
// for.
// The certificate names the node's enrolment (see Enrolment) when
// enrolment is set.
func (ca *CA) SignNode(csrDER []byte, node, enrolment string, now time.Time, ttl time.Duration) ([]byte, error) {
	csr, err := parseCSR(csrDER)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: node, OrganizationalUnit: []string{"agent"}},
		DNSNames:     []string{node + ".agent.proximity"},
		NotBefore:    now.Add(-ClockSkew),
		NotAfter:     now.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if enrolment != "" {
		tmpl.URIs = []*url.URL{{Scheme: "urn", Opaque: enrolmentURN + enrolment}}
	}
	return x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
}

const enrolmentURN = "proximity:enrolment:"

// Enrolment is the enrolment a node certificate was issued for, from its
// urn:proximity:enrolment:<id> name; empty if it names none.
func Enrolment(c *x509.Certificate) string {
	for _, u := range c.URIs {
		if u.Scheme == "urn" && strings.HasPrefix(u.Opaque, enrolmentURN) {
			return strings.TrimPrefix(u.Opaque, enrolmentURN)
		}
	}
	return ""
}

// ServerCert issues a coordinator's gRPC serving certificate; the chain
// includes the CA so a joining agent can check it against its pin.
func (ca *CA) ServerCert(id string, now time.Time, ttl time.Duration) (tls.Certificate, error) {
	key, err := NewKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: id, OrganizationalUnit: []string{"coordinator"}},
		DNSNames:     []string{ServerName},
		NotBefore:    now.Add(-ClockSkew),
		NotAfter:     now.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der, ca.CertDER}, PrivateKey: key, Leaf: leaf}, nil
}

// NewKey makes a P-256 key, the kind every Proximity key is.
func NewKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// parseCSR parses a CSR and checks its signature, which shows that its
// sender holds the private key.
func parseCSR(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("csr signature: %w", err)
	}
	return csr, nil
}

// NewKeyAndCSR makes a node key and a CSR for it.
func NewKeyAndCSR(node string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := NewKey()
	if err != nil {
		return nil, nil, err
	}
	csr, err := CSR(key, node)
	return key, csr, err
}

// CSR is a certificate request for node signed with key.
func CSR(key *ecdsa.PrivateKey, node string) ([]byte, error) {
	return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: node}}, key)
}

// KeyPin is the hex SHA-256 of a CSR's public key (its
// SubjectPublicKeyInfo), once the CSR's signature has shown that its
// sender holds the private key.
func KeyPin(csrDER []byte) (string, error) {
	csr, err := parseCSR(csrDER)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(csr.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:]), nil
}

// PEM encodes DER blocks.
func PEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// Token is a join token: a secret and the pin of the CA the agent must
// find on the other end. Its text form is pxj_<secret>_<pin>.
type Token struct {
	Secret string
	Pin    string
}

// NewToken makes a token for the CA with the given pin.
func NewToken(pin string) Token {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return Token{Secret: strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), Pin: pin}
}

func (t Token) String() string { return "pxj_" + t.Secret + "_" + t.Pin }

// Hash is what the cluster stores for a token.
func (t Token) Hash() string {
	sum := sha256.Sum256([]byte("join:" + t.Secret))
	return hex.EncodeToString(sum[:])
}

// ParseToken reads a join token.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(s, "_")
	if len(parts) != 3 || parts[0] != "pxj" || len(parts[1]) != 32 || len(parts[2]) != 64 {
		return Token{}, errors.New("join token: not of the form pxj_<secret>_<ca pin>")
	}
	if _, err := hex.DecodeString(parts[2]); err != nil {
		return Token{}, errors.New("join token: the CA pin is not hex")
	}
	return Token{Secret: parts[1], Pin: parts[2]}, nil
}

// ErrPinMismatch is a coordinator whose CA is not the one the join token
// names: the agent refuses to send it anything.
var ErrPinMismatch = errors.New("the coordinator's CA does not match the join token's pin")

// VerifyPinned returns a TLS peer check for a client that has no CA yet:
// the server's chain must contain a certificate whose pin is pin, and the
// leaf must be a valid coordinator certificate signed by it.
func VerifyPinned(pin string) func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	return func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		if len(rawCerts) == 0 {
			return errors.New("server sent no certificate")
		}
		var ca *x509.Certificate
		for _, raw := range rawCerts[1:] {
			if Pin(raw) == pin {
				ca, _ = x509.ParseCertificate(raw)
			}
		}
		if ca == nil {
			return ErrPinMismatch
		}
		leaf, err := x509.ParseCertificate(rawCerts[0])
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: ServerName, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		return err
	}
}

// APICert issues a coordinator's HTTPS certificate for the operator API,
// valid for each of hosts (IP addresses or DNS names).
func (ca *CA) APICert(id string, hosts []string, now time.Time, ttl time.Duration) (tls.Certificate, error) {
	key, err := NewKey()
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: id, OrganizationalUnit: []string{"api"}},
		NotBefore:    now.Add(-ClockSkew),
		NotAfter:     now.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.CertDER}, PrivateKey: key, Leaf: leaf}, nil
}
