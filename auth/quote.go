package auth

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Quote quotes a value taken from a credential (a claim, a certificate
// field) for an error message, shortened to 256 bytes so that a hostile
// credential cannot inflate responses or logs.
func Quote(s string) string { return strconv.Quote(Truncate(s, 256)) }

// QuoteList quotes up to 8 values with [Quote], as "[...]".
func QuoteList(list []string) string {
	quoted := make([]string, 0, min(len(list), 9))
	for i, s := range list {
		if i == 8 {
			quoted = append(quoted, "…")
			break
		}
		quoted = append(quoted, Quote(s))
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// Truncate shortens s to at most n bytes on a rune boundary, marking the
// cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
