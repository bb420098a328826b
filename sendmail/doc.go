// Package sendmail is relayq's sendmail(1) personality: the command line of
// Postfix's sendmail, the rules that turn what callers hand over into a
// message a strict relay accepts, and the sysexits codes callers expect. It
// is also mailq (-bp) and newaliases (-bi). Every message ends in the same
// submit call as the SMTP listener's (Options.Submit, injected by cmd).
//
// # Command line
//
// POSIX getopt as Postfix: options end at the first word that is not one,
// or at "--"; letters group ("-ti"); an option's argument is attached
// ("-fuser@x") or the next word ("-f user@x"). Recipients are address lists
// ("a@x, B <b@y>"); bare names ("root") are local names.
//
// The options are the FlagDocs table (also the sendmail(8)-style manual
// page, `relayq man relayq-sendmail.8`).
//
// An unknown option, a missing argument, an invalid -N/-R/-V/-B value, CR,
// LF or NUL in -f, -F, -N, -V, -o or a recipient, a sender or recipient
// starting with '-' (CVE-2016-10033-style option injection) are usage
// errors: exit 64 with a message naming the option.
//
// # Message intake
//
//   - Line ends: LF or CRLF end a line; the message is queued with CRLF.
//     A CR not followed by LF becomes a space (Postfix
//     cleanup_replace_stray_cr_lf); NUL octets are removed (a relay refuses
//     them, RFC 5322 §2.3, and they carry no text; removing them keeps cron
//     output that contains one deliverable, where refusing would lose it).
//     Nothing raw is passed on: no bare CR, LF or NUL reaches the spool.
//     These are submit.Normalizer's rules, the same on the SMTP listener.
//   - Line length (RFC 5322 §2.1.1, 998 octets): a header line is folded
//     at the last blank before the limit, else broken with CRLF SP (never
//     inside a UTF-8 character). A longer body line is queued whole; the
//     delivery sends the part holding it quoted-printable, so that it
//     decodes to the original octets, and folds it with CRLF SP (as
//     Postfix smtp_line_length_limit) only where the part cannot be
//     re-encoded (inside multipart/signed).
//   - Header section: ends at a blank line, or at the first line that is
//     neither a field nor a continuation (that line starts the body; a
//     blank line is inserted). A first line "From " (mbox) is dropped. Its
//     size is capped (Options.MaxHeaderSize, 100 KiB as Postfix
//     header_size_limit): larger is exit 65. Bodies stream in bounded
//     memory: to Submit through a pipe when the caller declared 8BITMIME,
//     else through a buffer that spills to an unlinked temporary file
//     beyond 1 MiB (so BODY=8BITMIME is declared only for 8-bit bodies).
//   - Removed (Postfix message_drop_headers): Bcc, Resent-Bcc, Return-Path,
//     Content-Length.
//   - Added: Received (by this host, from userid N), X-Authentication-Warning
//     when due, and when missing: From (the -F or passwd full name and the
//     sender), Date, Message-ID (<…@RELAYQ_DOMAIN>), "To:
//     undisclosed-recipients:;" when there is no To or Cc (Postfix), and
//     Resent-From/-Date/-Message-ID for a resent message.
//   - Bare names in From, To, Cc, Reply-To, Sender (and Resent- forms) are
//     qualified with RELAYQ_DOMAIN.
//   - Loops: a message that already has Options.HopCountLimit (50)
//     Received: fields is refused (exit 65, Postfix hopcount_limit).
//   - 8-bit octets anywhere set Body8Bit; UTF-8 in the envelope or in an
//     address field sets SMTPUTF8.
//
// # Addresses, senders, trust
//
// Recipients that are local names (bare, or at Options.LocalDomains) go
// through the aliases file (package aliases; read only when a local name
// needs it; a missing file means no aliases) and are qualified with
// RELAYQ_DOMAIN. The default envelope sender is the calling user at
// RELAYQ_DOMAIN. A user not in Options.TrustedUsers (uid 0 is always
// trusted) who sets another sender with -f (or MAIL FROM in -bs) gets an
// X-Authentication-Warning header, or exit 77 when Options.RefuseUntrusted.
// The envelope sender and the From addresses are then rewritten by the
// generic map, else by Options.SenderRewrite; a rewritten From keeps the
// original in Reply-To unless the message has one.
//
// # Exit codes (sysexits.h)
//
//	0   the message is on disk (queued); also -odi with delivery deferred
//	64  usage: bad option or argument, no recipients
//	65  bad message: header too large, mail loop, no recipient in the header (-t)
//	69  refused for good by the daemon (5xx), or -odi: a recipient bounced
//	74  reading standard input failed
//	75  not queued now (spool locked, full, daemon 4xx, anything unknown): try again
//	77  -f refused for an untrusted user
//	78  bad configuration (aliases file syntax)
package sendmail
