// Package appversion compares the versions of catalog entries, which are
// whatever their upstream projects call a release: "1.2.3", "v1.10",
// "2024.07.0", "1.0.0-rc.2", "16-alpine".
//
// The rule (also in docs/operations.md, "Updates"):
//
//   - A leading "v" or "V" is ignored, and so is build metadata after "+".
//   - The version splits at its first "-" into a release and a
//     pre-release part ("1.0.0-rc.2": release "1.0.0", pre-release "rc.2").
//   - Releases are compared component by component (split at "."); a
//     missing component counts as 0, so "1.2" equals "1.2.0". Two
//     components are compared as numbers when both are all digits ("10" is
//     newer than "9", "07" equals "7", which orders date-like versions such
//     as 2024.07.0 before 2024.10.1), else as runs of digits and other
//     characters in turn (natural order: "1a" < "1b" < "2", "rc9" <
//     "rc10"); a number is older than a word in the same place.
//   - With equal releases, a version with a pre-release is older than one
//     without ("1.0.0-rc.1" < "1.0.0"); two pre-releases are compared
//     identifier by identifier as semantic versioning does (numbers
//     numerically and before words, words in ASCII order, and a shorter
//     list first when it is a prefix of the other).
//   - An empty version is not comparable: it is never older or newer.
package appversion

import (
	"strings"
)

// Compare returns -1 if a is older than b, +1 if a is newer, 0 if they
// are the same version under the rule above.
func Compare(a, b string) int {
	ar, ap := split(a)
	br, bp := split(b)
	if c := compareRelease(ar, br); c != 0 {
		return c
	}
	switch {
	case ap == "" && bp == "":
		return 0
	case ap == "":
		return 1
	case bp == "":
		return -1
	}
	return comparePre(ap, bp)
}

// Newer reports whether candidate is a newer version than current; an
// empty version on either side is never newer.
func Newer(candidate, current string) bool {
	candidate, current = strings.TrimSpace(candidate), strings.TrimSpace(current)
	if candidate == "" || current == "" {
		return false
	}
	return Compare(candidate, current) > 0
}

func split(v string) (release, pre string) {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '+'); i >= 0 {
		v = v[:i]
	}
	if len(v) > 1 && (v[0] == 'v' || v[0] == 'V') && isDigit(v[1]) {
		v = v[1:]
	}
	release, pre, _ = strings.Cut(v, "-")
	return release, pre
}

func compareRelease(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		x, y := "0", "0"
		if i < len(as) && as[i] != "" {
			x = as[i]
		}
		if i < len(bs) && bs[i] != "" {
			y = bs[i]
		}
		if c := compareNatural(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// compareNatural compares runs of digits as numbers and other runs as
// text (byte order, so "alpha" < "beta"), in turn; a digit run sorts
// before a text run.
func compareNatural(a, b string) int {
	for a != "" && b != "" {
		ra, resta := run(a)
		rb, restb := run(b)
		da, db := isDigit(ra[0]), isDigit(rb[0])
		var c int
		switch {
		case da && db:
			c = compareNumbers(ra, rb)
		case da:
			c = -1
		case db:
			c = 1
		default:
			c = strings.Compare(ra, rb)
		}
		if c != 0 {
			return c
		}
		a, b = resta, restb
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}

func comparePre(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < min(len(as), len(bs)); i++ {
		x, y := as[i], bs[i]
		nx, ny := allDigits(x), allDigits(y)
		var c int
		switch {
		case nx && ny:
			c = compareNumbers(x, y)
		case nx:
			c = -1
		case ny:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case len(as) < len(bs):
		return -1
	case len(as) > len(bs):
		return 1
	}
	return 0
}

// compareNumbers compares two runs of digits of any length as numbers.
func compareNumbers(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func run(s string) (string, string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
