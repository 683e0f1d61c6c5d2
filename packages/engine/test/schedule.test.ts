import { describe, expect, it } from 'vitest';
import { createPolySchedule, createWarmupCosineSchedule, warmupCosineLr } from '../src/schedule.js';

describe('warmupCosineLr', () => {
  // baseLr 0.1, 10 steps, 2 warmup steps from 0.1 * baseLr, floor 0.001: values worked out by hand
  const opts = { baseLr: 0.1, totalSteps: 10, warmupSteps: 2, warmupStartFactor: 0.1, minLr: 0.001 };

  it('warms up linearly from startFactor * baseLr', () => {
    expect(warmupCosineLr(0, opts)).toBeCloseTo(0.01, 12); // 0.1 * 0.1
    expect(warmupCosineLr(1, opts)).toBeCloseTo(0.055, 12); // halfway between 0.01 and 0.1
  });

  it('follows the cosine after warmup', () => {
    expect(warmupCosineLr(2, opts)).toBeCloseTo(0.1, 12); // cos(0) = 1: the peak
    // t = 2 of T = 8: cos(pi/4) = sqrt(2)/2
    expect(warmupCosineLr(4, opts)).toBeCloseTo(0.001 + 0.099 * (1 + Math.SQRT1_2) / 2, 12);
    expect(warmupCosineLr(6, opts)).toBeCloseTo(0.0505, 12); // cos(pi/2) = 0: midpoint of 0.1 and 0.001
    expect(warmupCosineLr(8, opts)).toBeCloseTo(0.001 + 0.099 * (1 - Math.SQRT1_2) / 2, 12);
    expect(warmupCosineLr(10, opts)).toBe(0.001);
    expect(warmupCosineLr(25, opts)).toBe(0.001);
  });

  it('without warmup starts at baseLr and is monotone', () => {
    const s = createWarmupCosineSchedule({ baseLr: 0.5, totalSteps: 4 });
    expect([0, 1, 2, 3].map((i) => s.at(i))).toEqual([0.5, expect.closeTo(0.25 * (1 + Math.SQRT1_2), 12), expect.closeTo(0.25, 12), expect.closeTo(0.25 * (1 - Math.SQRT1_2), 12)]);
  });

  it('rejects bad options', () => {
    expect(() => warmupCosineLr(0, { baseLr: 0.1, totalSteps: 0 })).toThrow(/totalSteps/);
    expect(() => warmupCosineLr(0, { baseLr: 0.1, totalSteps: 5, warmupSteps: 6 })).toThrow(/warmupSteps/);
    expect(() => warmupCosineLr(-1, { baseLr: 0.1, totalSteps: 5 })).toThrow(/step/);
  });
});

describe('createPolySchedule (DeepLab poly, moved from @refconv/segment)', () => {
  it('follows base * (1 - t/T)^0.9 after a linear warmup from 1%', () => {
    const s = createPolySchedule({ baseLr: 0.1, totalSteps: 100, warmupSteps: 10 });
    expect(s.at(0)).toBeCloseTo(0.001, 12);
    expect(s.at(5)).toBeCloseTo(0.1 * (0.01 + 0.99 * 0.5), 12);
    expect(s.at(50)).toBeCloseTo(0.1 * Math.pow(0.5, 0.9), 12);
    expect(s.at(100)).toBe(0);
    expect(() => createPolySchedule({ baseLr: 0.1, totalSteps: 10, warmupSteps: 10 })).toThrow(/warmupSteps/);
  });
});

describe('createPolySchedule warmup start', () => {
  it('starts warmup at warmupStartFactor x baseLr', () => {
    const s = createPolySchedule({ baseLr: 0.2, totalSteps: 40, warmupSteps: 4, warmupStartFactor: 0.5 });
    expect(s.at(0)).toBeCloseTo(0.1, 12);
    expect(s.at(2)).toBeCloseTo(0.2 * (0.5 + 0.5 * 0.5), 12);
    expect(s.at(4)).toBeCloseTo(0.2 * Math.pow(0.9, 0.9), 12);
  });
});
