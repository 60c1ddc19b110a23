package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Cookie names.
const (
	SessionCookie = "proximity_session"
	CSRFCookie    = "proximity_csrf"
	CSRFHeader    = "X-CSRF-Token"
)

// DefaultSessionTTL is how long a session lasts unless set otherwise.
const DefaultSessionTTL = 12 * time.Hour

// CSRFToken is the CSRF token of a session: a keyed hash of its secret.
func CSRFToken(sessionSecret string) string {
	m := hmac.New(sha256.New, []byte(sessionSecret))
	m.Write([]byte("proximity csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:24])
}

// CheckCSRF reports whether header is the session's CSRF token.
func CheckCSRF(sessionSecret, header string) bool {
	return header != "" && hmac.Equal([]byte(CSRFToken(sessionSecret)), []byte(header))
}

// SameOrigin reports whether an Origin header (or, without one, a
// Referer) names the host the request was sent to. A request with
// neither passes this check; the CSRF header is what it must carry.
func SameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return true
	}
	u, err := url.Parse(src)
	if err != nil || u.Scheme != "https" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// SessionCookies are the cookies a login sets: the session (HttpOnly)
// and its CSRF token (readable by the page's script).
func SessionCookies(secret string, expires time.Time) []*http.Cookie {
	return []*http.Cookie{
		{Name: SessionCookie, Value: secret, Path: "/", Expires: expires, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode},
		{Name: CSRFCookie, Value: CSRFToken(secret), Path: "/", Expires: expires, Secure: true, SameSite: http.SameSiteStrictMode},
	}
}

// ClearCookies end a session in the browser.
func ClearCookies() []*http.Cookie {
	return []*http.Cookie{
		{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode},
		{Name: CSRFCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, SameSite: http.SameSiteStrictMode},
	}
}
