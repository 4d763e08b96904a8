// Package notice owns the text of tapproof's public notices: the versioned
// templates (notices/<language>/*.tmpl, embedded, one directory per language) from which every notice of an alert
// and every confirmation request is rendered, the mandatory health-effects
// language they carry (40 CFR 141.85), the public pages they link to
// (Links), and the sites they name (Site).
//
// The same rendering serves every channel, so that what residents are
// emailed, what a CAP document says (alerts/cap), what the Atom feed shows
// (public) and what the log records (the SHA-256 of Notice.Text in a
// tapproof.NoticeRecord) are one text. A changed text gets a new template
// version, never the same one.
//
// notice is pure: it talks to no external system and imports only the root
// package tapproof.
package notice
