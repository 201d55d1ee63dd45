// Package jsonfix makes encoding/json's output byte-identical to what the
// bookstore daemons write, where the two escape differently. Both leave
// everything else alike once the encoder's HTML escaping is off.
//
//   - U+007F (DEL): Go writes it as it is; json-glib (Books) and
//     bs-json-writer (Orders) write \u007f.
//   - U+2028, U+2029: Go always writes \u2028 and \u2029; both daemons
//     write the characters as they are.
//   - BS (0x08), FF (0x0c): Go 1.19 writes \u0008 and \u000c, as
//     bs-json-writer (Orders) does; json-glib (Books) writes \b and \f.
//
// The fast path is one scan for a byte that cannot occur in ordinary text:
// titles and authors with any of these characters are rare (Books refuses
// DEL, BS and FF today; older rows may hold them).
package jsonfix

import "bytes"

// Style says how a daemon escapes BS and FF.
type Style int

const (
	// JSONGlib is json-glib's style (bookstore-books): \b and \f.
	JSONGlib Style = iota
	// Writer is bs-json-writer's style (bookstore-orders): \u0008 and \u000c.
	Writer
)

var backslashU = []byte(`\u`)

// Rewrite returns b (compact JSON from encoding/json with SetEscapeHTML(false))
// escaped as the daemon of the given style escapes it. It returns b itself
// when nothing needs to change.
func Rewrite(b []byte, style Style) []byte {
	if bytes.IndexByte(b, 0x7f) < 0 && !bytes.Contains(b, backslashU) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == 0x7f {
			out = append(out, `\u007f`...)
			continue
		}
		if c != '\\' || i+1 >= len(b) {
			out = append(out, c)
			continue
		}
		// an escape: handled as a whole, so that "\\u2028" (a backslash
		// then the text u2028) is never taken for \u2028
		if b[i+1] == 'u' && i+5 < len(b) {
			replacement := ""
			switch string(b[i+2 : i+6]) {
			case "2028":
				replacement = "\u2028"
			case "2029":
				replacement = "\u2029"
			case "0008":
				if style == JSONGlib {
					replacement = `\b`
				}
			case "000c":
				if style == JSONGlib {
					replacement = `\f`
				}
			}
			if replacement != "" {
				out = append(out, replacement...)
				i += 5
				continue
			}
		}
		out = append(out, c, b[i+1])
		i++
	}
	return out
}
