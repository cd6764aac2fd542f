/** keySlot (src/infra/redis.ts) against the values Redis Cluster's specification gives. */
import { describe, expect, it } from 'vitest';
import { keySlot } from '../../src/infra/redis.js';

describe('keySlot', () => {
  it.each([
    ['123456789', 0x31c3 % 16384], // the CRC16-XMODEM check value
    ['foo', 12182],
    ['bar', 5061],
    ['{user1000}.following', keySlot('user1000')],
    ['{user1000}.followers', keySlot('user1000')],
    ['foo{}{bar}', keySlot('foo{}{bar}')], // an empty first tag: the whole key
    ['foo{{bar}}zap', keySlot('{bar')], // the tag is what lies between the first { and the next }
    ['foo{bar}{zap}', keySlot('bar')],
    ['ü{é}', keySlot('é')], // bytes, UTF-8
  ])('%s → slot %i', (key, slot) => {
    expect(keySlot(key)).toBe(slot);
  });

  it('sends an empty tag to the whole key', () => {
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'));
  });
});
