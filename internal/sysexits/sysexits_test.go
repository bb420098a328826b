package sysexits

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/relayq/relayq/wire"
)

func TestCode(t *testing.T) {
	t.Parallel()
	locked := Kind("locked", TempFail)
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, OK},
		{"unknown gets the default", errors.New("x"), Software},
		{"kind", locked, TempFail},
		{"wrapped kind", fmt.Errorf("open: %w", locked), TempFail},
		{"kind beats what it wraps", fmt.Errorf("%w: %w", Kind("bad", Config), fs.ErrNotExist), Config},
		{"reply 4xx", &wire.ReplyError{Command: "DATA", Code: 451, Enhanced: "4.3.0"}, TempFail},
		{"reply 5.7", fmt.Errorf("daemon refused %w", &wire.ReplyError{Code: 550, Enhanced: "5.7.1"}), NoPerm},
		{"reply 552", &wire.ReplyError{Code: 552}, DataErr},
		{"reply 5.3.4", &wire.ReplyError{Code: 554, Enhanced: "5.3.4"}, DataErr},
		{"reply 5.6.0", &wire.ReplyError{Code: 554, Enhanced: "5.6.0"}, DataErr},
		{"reply 5xx", &wire.ReplyError{Code: 554, Enhanced: "5.0.0"}, Unavailable},
		{"missing file is not Code's business", fmt.Errorf("read: %w", fs.ErrNotExist), Software},
		{"nor a permission error", fs.ErrPermission, Software},
		{"deadline", context.DeadlineExceeded, TempFail},
		{"cancelled", context.Canceled, TempFail},
	}
	for _, tt := range tests {
		if got := Code(tt.err, Software); got != tt.want {
			t.Errorf("%s: Code(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
	for _, tt := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("read: %w", fs.ErrNotExist), NoInput},
		{fs.ErrPermission, NoPerm},
		{fmt.Errorf("%w: %w", locked, fs.ErrPermission), TempFail},
		{errors.New("x"), Config},
		{nil, OK},
	} {
		if got := FileCode(tt.err, Config); got != tt.want {
			t.Errorf("FileCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if !errors.Is(fmt.Errorf("x: %w", locked), locked) || errors.Is(Kind("locked", TempFail), locked) {
		t.Error("Kind sentinels must compare by identity")
	}
}
