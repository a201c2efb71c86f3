//! The compact serde format records are stored in: postcard's compactness (LEB128 varints,
//! zigzag for signed numbers, lengths before strings, bytes and sequences, variants by
//! index) plus one thing postcard lacks, **a field count in front of every struct and struct
//! variant**, so a record written before a field was added still reads: the fields it does
//! not have take their `#[serde(default)]`. A record with more fields than this build knows
//! (written by a newer one) is refused, not misread.
//!
//! Not self-describing: it decodes only into the type it was encoded from (or a later
//! version of it, by the rules in [`super::codec`]). Fields skipped on serialization
//! (`skip_serializing_if`) are not supported: stored records do not use them.

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Message(String),
    #[error("the record ends early")]
    Eof,
    #[error("a varint is too long")]
    Varint,
    #[error("a struct of {found} fields where this build knows {known}: written by a newer perdure?")]
    TooManyFields { found: usize, known: usize },
    #[error("{0} is not supported by the record format")]
    Unsupported(&'static str),
    #[error("{0} bytes left after the record")]
    Trailing(usize),
}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Message(msg.to_string())
    }
}

impl de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Message(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Appends `value` to `out`.
pub fn to_writer<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<()> {
    value.serialize(&mut Serializer { out })
}

/// Reads a whole record.
pub fn from_slice<'de, T: de::Deserialize<'de>>(input: &'de [u8]) -> Result<T> {
    let mut de = Deserializer { input };
    let value = T::deserialize(&mut de)?;
    if de.input.is_empty() { Ok(value) } else { Err(Error::Trailing(de.input.len())) }
}

fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

fn unzigzag(v: u128) -> i128 {
    ((v >> 1) as i128) ^ -((v & 1) as i128)
}

struct Serializer<'a> {
    out: &'a mut Vec<u8>,
}

impl Serializer<'_> {
    fn len(&mut self, len: usize) {
        put_varint(self.out, len as u128);
    }
}

/// Serializes what a seq, map, struct or variant holds, after its header.
struct Compound<'a, 'b> {
    ser: &'a mut Serializer<'b>,
}

impl<'a, 'b> ser::Serializer for &'a mut Serializer<'b> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, 'b>;
    type SerializeTuple = Compound<'a, 'b>;
    type SerializeTupleStruct = Compound<'a, 'b>;
    type SerializeTupleVariant = Compound<'a, 'b>;
    type SerializeMap = Compound<'a, 'b>;
    type SerializeStruct = Compound<'a, 'b>;
    type SerializeStructVariant = Compound<'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.out.push(v as u8);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.serialize_i128(v as i128)
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.serialize_i128(v as i128)
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.serialize_i128(v as i128)
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.serialize_i128(v as i128)
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        put_varint(self.out, zigzag(v));
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.out.push(v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.serialize_u128(v as u128)
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.serialize_u128(v as u128)
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.serialize_u128(v as u128)
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        put_varint(self.out, v);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.serialize_u32(v as u32)
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.serialize_bytes(v.as_bytes())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.len(v.len());
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<()> {
        self.out.push(0);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        self.out.push(1);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<()> {
        self.serialize_u32(index)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        self.serialize_u32(index)?;
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, 'b>> {
        self.len(len.ok_or(Error::Unsupported("a sequence of unknown length"))?);
        Ok(Compound { ser: self })
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a, 'b>> {
        Ok(Compound { ser: self })
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a, 'b>> {
        Ok(Compound { ser: self })
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a, 'b>> {
        self.serialize_u32(index)?;
        Ok(Compound { ser: self })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a, 'b>> {
        self.len(len.ok_or(Error::Unsupported("a map of unknown length"))?);
        Ok(Compound { ser: self })
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Compound<'a, 'b>> {
        self.len(len);
        Ok(Compound { ser: self })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'b>> {
        self.serialize_u32(index)?;
        self.len(len);
        Ok(Compound { ser: self })
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        key.serialize(&mut *self.ser)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)
    }
    fn skip_field(&mut self, _: &'static str) -> Result<()> {
        Err(Error::Unsupported("a skipped field"))
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, value: &T) -> Result<()> {
        value.serialize(&mut *self.ser)
    }
    fn skip_field(&mut self, _: &'static str) -> Result<()> {
        Err(Error::Unsupported("a skipped field"))
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

struct Deserializer<'de> {
    input: &'de [u8],
}

impl<'de> Deserializer<'de> {
    fn byte(&mut self) -> Result<u8> {
        let (&b, rest) = self.input.split_first().ok_or(Error::Eof)?;
        self.input = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        if self.input.len() < n {
            return Err(Error::Eof);
        }
        let (head, rest) = self.input.split_at(n);
        self.input = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u128> {
        let mut v: u128 = 0;
        for shift in (0..=126).step_by(7) {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u128) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Error::Varint)
    }

    fn unsigned<T: TryFrom<u128>>(&mut self, what: &'static str) -> Result<T> {
        let v = self.varint()?;
        T::try_from(v).map_err(|_| Error::Message(format!("{v} does not fit in {what}")))
    }

    fn signed<T: TryFrom<i128>>(&mut self, what: &'static str) -> Result<T> {
        let v = unzigzag(self.varint()?);
        T::try_from(v).map_err(|_| Error::Message(format!("{v} does not fit in {what}")))
    }

    fn len(&mut self) -> Result<usize> {
        let len: usize = self.unsigned("a length")?;
        // Every element takes at least a byte (or is a unit, which collections of records
        // never hold): a length beyond what is left is corrupt, not a huge allocation.
        if len > self.input.len() {
            return Err(Error::Eof);
        }
        Ok(len)
    }

    fn bytes(&mut self) -> Result<&'de [u8]> {
        let len = self.len()?;
        self.take(len)
    }

    fn str(&mut self) -> Result<&'de str> {
        std::str::from_utf8(self.bytes()?).map_err(|e| Error::Message(e.to_string()))
    }
}

/// The elements of a seq, tuple, map or struct: at most `left` of them.
struct Elements<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> de::MapAccess<'de> for Elements<'_, 'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.de)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// Reads a struct's field count and visits its fields; older records have fewer fields.
fn visit_struct<'de, V: Visitor<'de>>(de: &mut Deserializer<'de>, known: usize, visitor: V) -> Result<V::Value> {
    let found = de.len()?;
    if found > known {
        return Err(Error::TooManyFields { found, known });
    }
    visitor.visit_seq(Elements { de, left: found })
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(Error::Unsupported("a value of unknown type"))
    }
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.byte()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            b => Err(Error::Message(format!("{b} is not a bool"))),
        }
    }
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i8(self.signed("i8")?)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i16(self.signed("i16")?)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i32(self.signed("i32")?)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i64(self.signed("i64")?)
    }
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i128(self.signed("i128")?)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u8(self.byte()?)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u16(self.unsigned("u16")?)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u32(self.unsigned("u32")?)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u64(self.unsigned("u64")?)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u128(self.varint()?)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f32(f32::from_le_bytes(self.take(4)?.try_into().expect("took 4 bytes")))
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f64(f64::from_le_bytes(self.take(8)?.try_into().expect("took 8 bytes")))
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let c: u32 = self.unsigned("char")?;
        visitor.visit_char(char::from_u32(c).ok_or_else(|| Error::Message(format!("{c} is not a char")))?)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_str(self.str()?)
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_borrowed_bytes(self.bytes()?)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.byte()? {
            0 => visitor.visit_none(),
            1 => visitor.visit_some(self),
            b => Err(Error::Message(format!("{b} is not an option tag"))),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let left = self.len()?;
        visitor.visit_seq(Elements { de: self, left })
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Elements { de: self, left: len })
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _: &'static str, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Elements { de: self, left: len })
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let left = self.len()?;
        visitor.visit_map(Elements { de: self, left })
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visit_struct(self, fields.len(), visitor)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_enum(self)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u32(self.unsigned("a variant index")?)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(Error::Unsupported("skipping a value"))
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

impl<'de> de::EnumAccess<'de> for &mut Deserializer<'de> {
    type Error = Error;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let index: u32 = self.unsigned("a variant index")?;
        let value = seed.deserialize(IntoDeserializer::<Error>::into_deserializer(index))?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Deserializer<'de> {
    type Error = Error;
    fn unit_variant(self) -> Result<()> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(Elements { de: self, left: len })
    }
    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value> {
        visit_struct(self, fields.len(), visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Kind {
        Unit,
        New(u64),
        Tuple(i32, String),
        Fields { a: Option<u8>, b: Bytes },
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Record {
        id: u128,
        small: u16,
        signed: i64,
        factor: f64,
        on: bool,
        name: String,
        kinds: Vec<Kind>,
        map: BTreeMap<u32, (u64, String)>,
        nested: Option<Box<Record>>,
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            Just(Kind::Unit),
            any::<u64>().prop_map(Kind::New),
            (any::<i32>(), "\\PC{0,8}").prop_map(|(a, b)| Kind::Tuple(a, b)),
            (any::<Option<u8>>(), proptest::collection::vec(any::<u8>(), 0..8))
                .prop_map(|(a, b)| Kind::Fields { a, b: b.into() }),
        ]
    }

    fn leaf() -> impl Strategy<Value = Record> {
        (
            any::<u128>(),
            any::<u16>(),
            any::<i64>(),
            any::<f64>().prop_filter("NaN is not equal to itself", |f| !f.is_nan()),
            any::<bool>(),
            "\\PC{0,12}",
            proptest::collection::vec(kind(), 0..4),
            proptest::collection::btree_map(any::<u32>(), (any::<u64>(), "[a-z]{0,4}"), 0..3),
        )
            .prop_map(|(id, small, signed, factor, on, name, kinds, map)| Record {
                id,
                small,
                signed,
                factor,
                on,
                name,
                kinds,
                map,
                nested: None,
            })
    }

    fn record() -> impl Strategy<Value = Record> {
        (leaf(), proptest::option::of(leaf())).prop_map(|(mut r, n)| {
            r.nested = n.map(Box::new);
            r
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: crate::fuzz_cases(2000), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn records_round_trip(r in record()) {
            let mut out = Vec::new();
            to_writer(&r, &mut out).unwrap();
            prop_assert_eq!(from_slice::<Record>(&out).unwrap(), r);
        }

        /// Whatever the bytes, decoding answers a record or an error.
        #[test]
        fn arbitrary_bytes_decode_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = from_slice::<Record>(&bytes);
        }
    }

    #[test]
    fn fields_added_later_take_their_defaults_and_newer_records_are_refused() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct V1 {
            a: u32,
        }
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct V2 {
            a: u32,
            #[serde(default)]
            b: Option<String>,
        }
        let mut old = Vec::new();
        to_writer(&V1 { a: 7 }, &mut old).unwrap();
        assert_eq!(from_slice::<V2>(&old).unwrap(), V2 { a: 7, b: None });
        let mut new = Vec::new();
        to_writer(&V2 { a: 7, b: Some("x".into()) }, &mut new).unwrap();
        assert!(matches!(from_slice::<V1>(&new), Err(Error::TooManyFields { found: 2, known: 1 })));
    }

    #[test]
    fn numbers_are_varints() {
        let mut out = Vec::new();
        to_writer(&(1u64, 300u64, -1i64, u64::MAX), &mut out).unwrap();
        assert_eq!(out, [1, 0xac, 0x02, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(from_slice::<u64>(&[0xff; 20]).is_err(), "an overlong varint");
        assert!(from_slice::<u8>(&[1, 2]).is_err(), "trailing bytes");
    }
}
