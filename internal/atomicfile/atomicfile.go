// Package atomicfile replaces a file so that a reader sees the old content
// or the new one, never a mix, and a crash leaves one of them: the data
// goes to a temporary file beside the target (mode and owner set before
// any byte is written), is fsynced, renamed over the target, and the
// directory is fsynced. The credentials file, the listener's users file
// and the files relayq import writes all go through it.
package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Attr is a file's mode and owner; UID or GID -1 leaves that one as the
// process creates it.
type Attr struct {
	Mode     fs.FileMode
	UID, GID int
}

// Existing returns the mode and owner of the file at path; ok is false
// when there is no such file.
func Existing(path string) (a Attr, ok bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Attr{UID: -1, GID: -1}, false, nil
	}
	if err != nil {
		return Attr{}, false, err
	}
	a = Attr{Mode: fi.Mode().Perm(), UID: -1, GID: -1}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		a.UID, a.GID = int(st.Uid), int(st.Gid)
	}
	return a, true, nil
}

// Write replaces path with data, with mode and owner a (the owner is set
// only when it differs from the process's own).
func Write(path string, data []byte, a Attr) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(a.Mode); err != nil {
		return fail(err)
	}
	if (a.UID >= 0 && a.UID != os.Geteuid()) || (a.GID >= 0 && a.GID != os.Getegid()) {
		if err := f.Chown(a.UID, a.GID); err != nil {
			return fail(err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
