import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { encodeSafetensors, readSafetensors, writeSafetensors } from '../src/safetensors.js';

const fixtureDir = fileURLToPath(new URL('./fixtures/safetensors/', import.meta.url));
const torchFile = path.join(fixtureDir, 'torch.safetensors');

interface ExpectedTensor { dtype: string; shape: number[]; values: Array<number | string>; bits?: number[] }
const expected = JSON.parse(fs.readFileSync(path.join(fixtureDir, 'expected.json'), 'utf8')) as {
  metadata: Record<string, string>;
  tensors: Record<string, ExpectedTensor>;
};

function expectedNumber(v: number | string): number {
  if (typeof v === 'number') return v;
  const special: Record<string, number> = { inf: Infinity, '-inf': -Infinity, nan: NaN };
  if (!(v in special)) throw new Error(`expected.json: unexpected value '${v}'`);
  return special[v]!;
}

/** Builds a safetensors buffer by hand (independent of the encoder under test). */
function handBuilt(headerJson: string, data: Uint8Array): Uint8Array {
  const header = new TextEncoder().encode(headerJson);
  const out = new Uint8Array(8 + header.length + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, header.length, true); // low word of the u64
  dv.setUint32(4, 0, true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

function tmpFile(name: string): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'st-test-')), name);
}

describe('readSafetensors on a file written by Python safetensors', () => {
  const file = readSafetensors(torchFile);

  it('reads the metadata and every tensor name', () => {
    expect(file.metadata).toEqual(expected.metadata);
    expect([...file.keys()].sort()).toEqual(Object.keys(expected.tensors).sort());
  });

  for (const [name, exp] of Object.entries(expected.tensors)) {
    it(`decodes '${name}' (${exp.dtype}${JSON.stringify(exp.shape)}) exactly`, () => {
      const t = file.get(name)!;
      expect(t.dtype).toBe(exp.dtype);
      expect(t.shape).toEqual(exp.shape);
      if (exp.dtype === 'I64') {
        expect(t.data).toBeInstanceOf(BigInt64Array);
        expect([...(t.data as BigInt64Array)].map(String)).toEqual(exp.values);
        return;
      }
      if (['F32', 'F16', 'BF16', 'F64'].includes(exp.dtype)) expect(t.data).toBeInstanceOf(Float32Array);
      const got = Array.from(t.data as ArrayLike<number>);
      const want = exp.values.map(expectedNumber);
      if (exp.dtype === 'F64') {
        // F64 is narrowed to float32: compare with Math.fround of the exact value.
        expect(got).toEqual(want.map(Math.fround));
      } else {
        expect(got).toEqual(want);
      }
    });
  }
});

describe('writeSafetensors', () => {
  it('encodes F16 and BF16 bit for bit as torch rounds them', () => {
    for (const [src, half] of [['f32_special', 'f16_special'], ['f32_special', 'bf16_special'], ['f32_rand', 'f16_rand'], ['f32_rand', 'bf16_rand']] as const) {
      const values = Float32Array.from(expected.tensors[src]!.values.map(expectedNumber));
      const dtype = expected.tensors[half]!.dtype as 'F16' | 'BF16';
      const bytes = encodeSafetensors({ x: { shape: [values.length], data: values, dtype } });
      const hlen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const bits = new Uint16Array(bytes.slice(8 + hlen).buffer);
      expect(Array.from(bits), `${src} -> ${dtype}`).toEqual(expected.tensors[half]!.bits);
    }
  });

  it('lays out header and data as the format specifies', () => {
    const a = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const b = new BigInt64Array([7n]);
    const bytes = encodeSafetensors({ a: { shape: [2, 3], data: a }, b: { shape: [], data: b } }, { k: 'v' });
    const dv = new DataView(bytes.buffer);
    const hlen = Number(dv.getBigUint64(0, true));
    expect(hlen % 8).toBe(0); // padded so the data section is aligned
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + hlen)));
    expect(header).toEqual({
      __metadata__: { k: 'v' },
      a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
      b: { dtype: 'I64', shape: [], data_offsets: [24, 32] },
    });
    expect(bytes.length).toBe(8 + hlen + 32);
    for (let i = 0; i < 6; i++) expect(dv.getFloat32(8 + hlen + 4 * i, true)).toBe(i + 1);
    expect(dv.getBigInt64(8 + hlen + 24, true)).toBe(7n);
  });

  it('round-trips every dtype through a file and leaves no temp file behind', () => {
    const file = tmpFile('w.safetensors');
    const tensors = {
      f32: { shape: [2, 2], data: Float32Array.from([0.1, -2, 3.5, 1e-7]) },
      i32: { shape: [3], data: Int32Array.from([-1, 0, 2 ** 31 - 1]) },
      i16: { shape: [1], data: Int16Array.from([-5]) },
      i8: { shape: [2], data: Int8Array.from([-128, 127]) },
      u8: { shape: [2], data: Uint8Array.from([0, 255]) },
      flag: { shape: [2], data: Uint8Array.from([1, 0]), dtype: 'BOOL' as const },
      i64: { shape: [1], data: new BigInt64Array([-(2n ** 40n)]) },
      h: { shape: [2], data: Float32Array.from([0.5, -3]), dtype: 'F16' as const },
    };
    writeSafetensors(file, tensors, { epoch: '3' });
    expect(fs.readdirSync(path.dirname(file))).toEqual(['w.safetensors']);
    const back = readSafetensors(file);
    expect(back.metadata).toEqual({ epoch: '3' });
    for (const [name, t] of Object.entries(tensors)) {
      const r = back.get(name)!;
      expect(r.shape, name).toEqual(t.shape);
      expect(r.dtype, name).toBe((t as { dtype?: string }).dtype ?? r.dtype);
      expect(Array.from(r.data as ArrayLike<number | bigint>), name).toEqual(Array.from(t.data as ArrayLike<number | bigint>));
    }
  });

  it('rejects a shape that disagrees with the data', () => {
    expect(() => encodeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(/'w'.*4 elements but data has 3/);
  });

  it('rejects an impossible dtype conversion', () => {
    expect(() => encodeSafetensors({ w: { shape: [1], data: new Int32Array(1), dtype: 'F16' } })).toThrow(/'w'.*Int32Array as F16/);
  });
});

describe('readSafetensors on hand-built buffers', () => {
  const f32Bytes = new Uint8Array(new Float32Array([1.5, -2]).buffer);

  it('reads a minimal file without metadata', () => {
    const buf = handBuilt('{"x":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}', f32Bytes);
    const r = readSafetensors(buf);
    expect(r.metadata).toEqual({});
    expect(r.get('x')!.shape).toEqual([1, 2]);
    expect(Array.from(r.get('x')!.data as Float32Array)).toEqual([1.5, -2]);
  });

  it('reads data at an odd byte offset (unaligned in the file)', () => {
    const data = new Uint8Array(9);
    data.set(f32Bytes, 1);
    const buf = handBuilt('{"pad":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}}', data);
    expect(Array.from(readSafetensors(buf).get('x')!.data as Float32Array)).toEqual([1.5, -2]);
  });

  it('names the file when it is truncated', () => {
    const file = tmpFile('trunc.safetensors');
    const full = fs.readFileSync(torchFile);
    fs.writeFileSync(file, full.subarray(0, full.length - 10));
    expect(() => readSafetensors(file)).toThrow(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*out of range.*truncated`));
    fs.writeFileSync(file, full.subarray(0, 5));
    expect(() => readSafetensors(file)).toThrow(/trunc\.safetensors: truncated file: 5 bytes/);
    fs.writeFileSync(file, full.subarray(0, 40));
    expect(() => readSafetensors(file)).toThrow(/trunc\.safetensors: truncated file: header says \d+ header bytes but only 32 follow/);
  });

  it('reports bad header JSON', () => {
    expect(() => readSafetensors(handBuilt('{"x": {', new Uint8Array(0)))).toThrow(/<buffer>: header is not valid JSON/);
  });

  it('reports an unknown dtype', () => {
    const buf = handBuilt('{"x":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}', new Uint8Array(2));
    expect(() => readSafetensors(buf)).toThrow(/tensor 'x': unknown dtype "F8_E4M3"/);
  });

  it('reports offsets that disagree with the shape', () => {
    const buf = handBuilt('{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', f32Bytes);
    expect(() => readSafetensors(buf)).toThrow(/tensor 'x': data_offsets \[0, 8\] span 8 bytes but F32\[3\] needs 12/);
  });

  it('reports overlapping tensors', () => {
    const buf = handBuilt('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32Bytes);
    expect(() => readSafetensors(buf)).toThrow(/'a' and 'b' overlap/);
  });

  it('reports a missing file by name', () => {
    expect(() => readSafetensors('/nonexistent/w.safetensors')).toThrow(/\/nonexistent\/w\.safetensors: cannot read file/);
  });

  it('rejects non-string metadata', () => {
    const buf = handBuilt('{"__metadata__":{"n":3}}', new Uint8Array(0));
    expect(() => readSafetensors(buf)).toThrow(/__metadata__\['n'\] must be a string/);
  });
});
