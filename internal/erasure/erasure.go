// Package erasure is the code that lets a striped chunk be rebuilt from any
// N of its N+P fragments: a systematic Reed–Solomon code over GF(2⁸), its
// parity rows a Cauchy matrix scaled so that the first parity fragment is the
// XOR of the data fragments.
//
// The generator matrix is the N×N identity over a P×N matrix
// C[j][i] = c_i / (x_j ⊕ y_i), y_i = i, x_j = N + j, c_i = x_0 ⊕ y_i (so
// C[0][i] = 1). Every square submatrix of a Cauchy matrix, with its columns
// scaled by non-zero constants, is invertible, so every N rows of the
// generator are: any N fragments determine the data. Data and parity are
// shards of one length; the field's polynomial is x⁸+x⁴+x³+x²+1 (0x11d).
package erasure

import (
	"errors"
	"fmt"
)

// MaxShards bounds N+P: the field has 256 elements, and x_j and y_i must be
// distinct.
const MaxShards = 256

// ErrTooFew is returned when fewer than N shards are present.
var ErrTooFew = errors.New("erasure: fewer shards than data shards")

var expTable [512]byte
var logTable [256]byte

func init() {
	x := 1
	for i := range 255 {
		expTable[i] = byte(x)
		expTable[i+255] = byte(x)
		logTable[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11d
		}
	}
}

func mul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return expTable[int(logTable[a])+int(logTable[b])]
}

func inv(a byte) byte {
	if a == 0 {
		panic("erasure: inverse of 0")
	}
	return expTable[255-int(logTable[a])]
}

// Code is an erasure code of N data and P parity shards. It is read only
// after New, so one Code may serve many goroutines.
type Code struct {
	n, p   int
	parity [][]byte // P rows of N coefficients
}

// New returns the code for n data and p parity shards.
func New(n, p int) (*Code, error) {
	if n < 1 || p < 0 || n+p > MaxShards {
		return nil, fmt.Errorf("erasure: %d data and %d parity shards", n, p)
	}
	c := &Code{n: n, p: p, parity: make([][]byte, p)}
	for j := range p {
		row := make([]byte, n)
		x := byte(n + j)
		for i := range n {
			y := byte(i)
			scale := byte(n) ^ y // x_0 ⊕ y_i
			row[i] = mul(scale, inv(x^y))
		}
		c.parity[j] = row
	}
	return c, nil
}

// Data returns N, Parity P.
func (c *Code) Data() int   { return c.n }
func (c *Code) Parity() int { return c.p }

// row returns shard k's row of the generator matrix.
func (c *Code) row(k int) []byte {
	if k >= c.n {
		return c.parity[k-c.n]
	}
	r := make([]byte, c.n)
	r[k] = 1
	return r
}

// Encode computes the parity shards from the data shards: data holds N
// shards of one length, parity P shards of that length, which it overwrites.
func (c *Code) Encode(data, parity [][]byte) error {
	if len(data) != c.n || len(parity) != c.p {
		return fmt.Errorf("erasure: %d data and %d parity shards, want %d and %d", len(data), len(parity), c.n, c.p)
	}
	size := len(data[0])
	for _, s := range data {
		if len(s) != size {
			return errors.New("erasure: data shards of different lengths")
		}
	}
	for j, out := range parity {
		if len(out) != size {
			return errors.New("erasure: a parity shard of another length")
		}
		clear(out)
		for i, s := range data {
			mulAdd(out, s, c.parity[j][i])
		}
	}
	return nil
}

// mulAdd sets out[k] ^= coef·in[k].
func mulAdd(out, in []byte, coef byte) {
	switch coef {
	case 0:
		return
	case 1:
		for k, v := range in {
			out[k] ^= v
		}
		return
	}
	var t [256]byte
	lc := int(logTable[coef])
	for v := 1; v < 256; v++ {
		t[v] = expTable[int(logTable[v])+lc]
	}
	for k, v := range in {
		out[k] ^= t[v]
	}
}

// Reconstruct fills in the missing data shards: shards holds N+P entries,
// nil where a shard is missing; at least N must be present, all of one
// length. Missing parity shards stay nil.
func (c *Code) Reconstruct(shards [][]byte) error {
	if len(shards) != c.n+c.p {
		return fmt.Errorf("erasure: %d shards, want %d", len(shards), c.n+c.p)
	}
	size := -1
	var have []int
	missing := false
	for k, s := range shards {
		if s == nil {
			if k < c.n {
				missing = true
			}
			continue
		}
		if size >= 0 && len(s) != size {
			return errors.New("erasure: shards of different lengths")
		}
		size = len(s)
		if len(have) < c.n {
			have = append(have, k)
		}
	}
	if len(have) < c.n {
		return fmt.Errorf("%w: %d of %d", ErrTooFew, len(have), c.n)
	}
	if !missing {
		return nil
	}
	// The rows of the shards present, inverted, give each data shard as a
	// combination of them.
	m := make([][]byte, c.n)
	for r, k := range have {
		m[r] = append([]byte(nil), c.row(k)...)
	}
	dec, err := invert(m)
	if err != nil {
		return err
	}
	for i := range c.n {
		if shards[i] != nil {
			continue
		}
		out := make([]byte, size)
		for r, k := range have {
			mulAdd(out, shards[k], dec[i][r])
		}
		shards[i] = out
	}
	return nil
}

// invert returns the inverse of the square matrix m (which it destroys), by
// Gauss–Jordan elimination.
func invert(m [][]byte) ([][]byte, error) {
	n := len(m)
	out := make([][]byte, n)
	for i := range n {
		out[i] = make([]byte, n)
		out[i][i] = 1
	}
	for col := range n {
		p := col
		for p < n && m[p][col] == 0 {
			p++
		}
		if p == n {
			return nil, errors.New("erasure: singular matrix")
		}
		m[col], m[p] = m[p], m[col]
		out[col], out[p] = out[p], out[col]
		if f := m[col][col]; f != 1 {
			fi := inv(f)
			for k := range n {
				m[col][k] = mul(m[col][k], fi)
				out[col][k] = mul(out[col][k], fi)
			}
		}
		for r := range n {
			if r == col || m[r][col] == 0 {
				continue
			}
			f := m[r][col]
			for k := range n {
				m[r][k] ^= mul(f, m[col][k])
				out[r][k] ^= mul(f, out[col][k])
			}
		}
	}
	return out, nil
}
