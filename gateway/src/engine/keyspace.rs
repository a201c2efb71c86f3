//! How partitions divide the work: each owns an equal range of the 64-bit partition-key
//! space (an invocation's, or its object's key hash).

use std::ops::RangeInclusive;

/// Which part of the key space a partition owns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    pub id: u32,
    pub keys: RangeInclusive<u64>,
}

impl PartitionInfo {
    pub fn owns(&self, partition_key: u64) -> bool {
        self.keys.contains(&partition_key)
    }
}

/// Partitions split the 64-bit partition-key space into equal ranges: this is partition
/// `index` of `count`'s.
pub fn key_range(index: u32, count: u32) -> RangeInclusive<u64> {
    let start = |i: u32| (((i as u128) << 64).div_ceil(count as u128)) as u64;
    let end = if index + 1 == count { u64::MAX } else { start(index + 1) - 1 };
    start(index)..=end
}

/// The partition that owns `partition_key`.
pub fn partition_of(partition_key: u64, count: u32) -> u32 {
    ((partition_key as u128 * count as u128) >> 64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_key_space_and_agree_with_lookup() {
        for count in [1u32, 2, 3, 4, 7, 24] {
            let mut next = 0u64;
            for i in 0..count {
                let r = key_range(i, count);
                assert_eq!(*r.start(), next, "partition {i} of {count}");
                assert_eq!(partition_of(*r.start(), count), i);
                assert_eq!(partition_of(*r.end(), count), i);
                next = r.end().wrapping_add(1);
            }
            assert_eq!(*key_range(count - 1, count).end(), u64::MAX);
        }
    }
}
