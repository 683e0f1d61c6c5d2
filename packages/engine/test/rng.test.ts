import { describe, expect, it } from 'vitest';
import { Rng, deriveSeed } from '../src/rng.js';

describe('Rng', () => {
  it('matches the xoshiro128** reference sequence from state [1, 2, 3, 4]', () => {
    // computed with an independent Python implementation of xoshiro128** (Blackman & Vigna)
    const r = Rng.fromState([1, 2, 3, 4]);
    expect(Array.from({ length: 6 }, () => r.nextUint32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 20 }, () => a.random());
    expect(Array.from({ length: 20 }, () => b.random())).toEqual(sa);
    expect(Array.from({ length: 20 }, () => c.random())).not.toEqual(sa);
  });

  it('resumes from a saved state exactly (through JSON)', () => {
    const r = new Rng(7);
    for (let i = 0; i < 100; i++) r.random();
    const saved = JSON.parse(JSON.stringify(r.getState()));
    const expected = Array.from({ length: 50 }, () => r.int(1000));
    const resumed = Rng.fromState(saved);
    expect(Array.from({ length: 50 }, () => resumed.int(1000))).toEqual(expected);
  });

  it('draws integers uniformly (chi-square over 10 bins)', () => {
    const r = new Rng(1);
    const counts = new Array(10).fill(0);
    const n = 20000;
    for (let i = 0; i < n; i++) counts[r.int(10)]++;
    const chi2 = counts.reduce((s, c) => s + (c - n / 10) ** 2 / (n / 10), 0);
    expect(chi2).toBeLessThan(27.9); // p = 0.001 critical value for 9 degrees of freedom
  });

  it('random() is in [0, 1) and normal() has mean ~0 and variance ~1', () => {
    const r = new Rng(3);
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < 20000; i++) {
      const u = r.random();
      expect(u >= 0 && u < 1).toBe(true);
      const z = r.normal();
      sum += z;
      sq += z * z;
    }
    expect(Math.abs(sum / 20000)).toBeLessThan(0.05);
    expect(Math.abs(sq / 20000 - 1)).toBeLessThan(0.05);
  });

  it('permutation is a permutation', () => {
    const p = new Rng(5).permutation(100);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(p).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('deriveSeed separates streams', () => {
    expect(deriveSeed(1, 0)).not.toBe(deriveSeed(1, 1));
    expect(deriveSeed(1, 0)).toBe(deriveSeed(1, 0));
    expect(deriveSeed(1, 0, 1)).not.toBe(deriveSeed(1, 1, 0));
  });

  it('rejects invalid states', () => {
    expect(() => Rng.fromState([0, 0, 0, 0])).toThrow(/all-zero/);
    expect(() => Rng.fromState([1, 2, 3] as never)).toThrow(/four uint32/);
  });
});
