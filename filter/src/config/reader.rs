//! Reads the configuration's JSON into the raw structs with one table-driven serde visitor
//! instead of the visitors `#[derive(Deserialize)]` writes: a derived visitor is monomorphised
//! per struct and per field type, and the configuration's ~20 structs made ≈ 90 KB of the Wasm
//! module (BENCHMARKS.md, "The Wasm module's size").
//!
//! The errors stay serde_json's own, word for word and at the same line and column: the visitor
//! makes the same calls on the same `serde_json::Deserializer` as the derived code (the same
//! `deserialize_struct` / `deserialize_option` / `deserialize_enum`, serde's own `String`, `u64`,
//! `usize`, `u32`, `bool`, `Value` and `BTreeMap` impls for the leaves, `unknown_field`,
//! `duplicate_field`, `missing_field` and `invalid_length` with the same arguments). The derives
//! stay on the raw structs (they cost nothing unless used): the JSON Schema is generated from
//! them, and the tests parse every configuration both ways and compare.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// `T`, `Option<T>`, `Vec<T>` or `Option<Vec<T>>` of a [`Base`] type.
#[derive(Clone, Copy)]
pub(super) enum Shape {
    One,
    Opt,
    List,
    OptList,
}

/// The type a field holds (inside its [`Shape`]).
#[derive(Clone, Copy)]
pub(super) enum Base {
    Str,
    U64,
    Usize,
    U32,
    Bool,
    Json,
    /// `BTreeMap<String, String>`
    StrMap,
    /// `BTreeMap<String, serde_json::Value>`
    JsonMap,
    Struct(&'static StructSpec),
    /// An enum of unit variants.
    Enum(&'static EnumSpec),
}

/// A struct with `#[serde(deny_unknown_fields)]`, as its derive would see it.
pub(super) struct StructSpec {
    /// The Rust name (serde's "struct RawProvider" in its messages).
    pub name: &'static str,
    /// The JSON names, in declaration order.
    pub names: &'static [&'static str],
    /// Per field: its shape, its type, and whether it has `#[serde(default)]`.
    pub fields: &'static [(Shape, Base, bool)],
}

/// An enum of unit variants (`rename_all` applied to `variants`).
pub(super) struct EnumSpec {
    pub name: &'static str,
    pub variants: &'static [&'static str],
}

/// What was read: a field left out (or `null` in an `Option`) is `Absent`.
#[derive(Debug)]
pub(super) enum Node {
    Absent,
    Str(String),
    Num(u64),
    Bool(bool),
    Json(Value),
    StrMap(BTreeMap<String, String>),
    JsonMap(BTreeMap<String, Value>),
    List(Vec<Node>),
    Fields(Vec<Node>),
    Variant(usize),
}

/// Parses `bytes` as one `spec` struct, as `serde_json::from_slice` does.
pub(super) fn read(bytes: &[u8], spec: &'static StructSpec) -> Result<Fields, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let node = Seed(Shape::One, Base::Struct(spec)).deserialize(&mut de)?;
    de.end()?;
    Ok(Fields::of(node))
}

#[derive(Clone, Copy)]
struct Seed(Shape, Base);

impl<'de> DeserializeSeed<'de> for Seed {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        match self.0 {
            Shape::One => base(self.1, d),
            Shape::List => d.deserialize_seq(ListVisitor(self.1)),
            Shape::Opt | Shape::OptList => d.deserialize_option(OptVisitor(self)),
        }
    }
}

fn base<'de, D: Deserializer<'de>>(base: Base, d: D) -> Result<Node, D::Error> {
    Ok(match base {
        Base::Str => Node::Str(String::deserialize(d)?),
        Base::U64 => Node::Num(u64::deserialize(d)?),
        Base::Usize => Node::Num(usize::deserialize(d)? as u64),
        Base::U32 => Node::Num(u64::from(u32::deserialize(d)?)),
        Base::Bool => Node::Bool(bool::deserialize(d)?),
        Base::Json => Node::Json(Value::deserialize(d)?),
        Base::StrMap => Node::StrMap(BTreeMap::deserialize(d)?),
        Base::JsonMap => Node::JsonMap(BTreeMap::deserialize(d)?),
        Base::Struct(spec) => d.deserialize_struct(spec.name, spec.names, StructVisitor(spec))?,
        Base::Enum(spec) => d.deserialize_enum(spec.name, spec.variants, EnumVisitor(spec))?,
    })
}

/// serde's `Option<T>` visitor.
struct OptVisitor(Seed);

impl<'de> Visitor<'de> for OptVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("option")
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Absent)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Absent)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        let shape = match self.0.0 {
            Shape::OptList => Shape::List,
            _ => Shape::One,
        };
        Seed(shape, self.0.1).deserialize(d)
    }
}

/// serde's `Vec<T>` visitor.
struct ListVisitor(Base);

impl<'de> Visitor<'de> for ListVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Seed(Shape::One, self.0))? {
            items.push(item);
        }
        Ok(Node::List(items))
    }
}

/// The derived visitor of a `deny_unknown_fields` struct: a map of known, distinct keys (the
/// required ones present), or a sequence of the fields in order.
struct StructVisitor(&'static StructSpec);

impl<'de> Visitor<'de> for StructVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "struct {}", self.0.name)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let spec = self.0;
        let mut slots: Vec<Option<Node>> = spec.fields.iter().map(|_| None).collect();
        while let Some(i) = map.next_key_seed(NameSeed::field(spec))? {
            let (Some(slot), Some(&(shape, base, _))) = (slots.get_mut(i), spec.fields.get(i))
            else {
                return Err(de::Error::custom("field index out of range"));
            };
            if slot.is_some() {
                return Err(de::Error::duplicate_field(name_at(spec.names, i)));
            }
            *slot = Some(map.next_value_seed(Seed(shape, base))?);
        }
        let mut fields = Vec::with_capacity(slots.len());
        for (i, (slot, &(_, _, default))) in slots.into_iter().zip(spec.fields).enumerate() {
            match slot {
                Some(node) => fields.push(node),
                None if default => fields.push(Node::Absent),
                None => return Err(de::Error::missing_field(name_at(spec.names, i))),
            }
        }
        Ok(Node::Fields(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let spec = self.0;
        let mut fields = Vec::with_capacity(spec.fields.len());
        for (i, &(shape, base, default)) in spec.fields.iter().enumerate() {
            match seq.next_element_seed(Seed(shape, base))? {
                Some(node) => fields.push(node),
                None if default => fields.push(Node::Absent),
                None => return Err(de::Error::invalid_length(i, &SeqLength(spec))),
            }
        }
        Ok(Node::Fields(fields))
    }
}

fn name_at(names: &'static [&'static str], i: usize) -> &'static str {
    names.get(i).copied().unwrap_or("")
}

/// The derive's "struct RawJwksSource with 6 elements".
struct SeqLength(&'static StructSpec);

impl de::Expected for SeqLength {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let n = self.0.fields.len();
        let plural = if n == 1 { "" } else { "s" };
        write!(f, "struct {} with {n} element{plural}", self.0.name)
    }
}

/// The derived visitor of a unit-variant enum.
struct EnumVisitor(&'static EnumSpec);

impl<'de> Visitor<'de> for EnumVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "enum {}", self.0.name)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        let (i, variant) = data.variant_seed(NameSeed {
            names: self.0.variants,
            variant: true,
        })?;
        de::VariantAccess::unit_variant(variant)?;
        Ok(Node::Variant(i))
    }
}

/// A struct's field name or an enum's variant name, as its index; an unknown one is an error.
#[derive(Clone, Copy)]
struct NameSeed {
    names: &'static [&'static str],
    variant: bool,
}

impl NameSeed {
    fn field(spec: &'static StructSpec) -> Self {
        NameSeed {
            names: spec.names,
            variant: false,
        }
    }
}

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(if self.variant {
            "variant identifier"
        } else {
            "field identifier"
        })
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<usize, E> {
        match self.names.iter().position(|n| *n == value) {
            Some(i) => Ok(i),
            None if self.variant => Err(E::unknown_variant(value, self.names)),
            None => Err(E::unknown_field(value, self.names)),
        }
    }

    fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<usize, E> {
        self.visit_str(&String::from_utf8_lossy(value))
    }
}

/// The fields of a struct that was read, taken in declaration order by the raw structs'
/// builders. A builder that disagrees with its [`StructSpec`] gets defaults, never a panic (the
/// tests parse every configuration both ways and compare).
pub(super) struct Fields(std::vec::IntoIter<Node>);

impl Fields {
    fn of(node: Node) -> Self {
        match node {
            Node::Fields(fields) => Fields(fields.into_iter()),
            _ => Fields(Vec::new().into_iter()),
        }
    }

    fn next(&mut self) -> Node {
        self.0.next().unwrap_or(Node::Absent)
    }

    pub fn string(&mut self) -> String {
        self.opt_string().unwrap_or_default()
    }

    pub fn opt_string(&mut self) -> Option<String> {
        match self.next() {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn opt_u64(&mut self) -> Option<u64> {
        match self.next() {
            Node::Num(n) => Some(n),
            _ => None,
        }
    }

    pub fn opt_usize(&mut self) -> Option<usize> {
        self.opt_u64().and_then(|n| usize::try_from(n).ok())
    }

    pub fn opt_u32(&mut self) -> Option<u32> {
        self.opt_u64().and_then(|n| u32::try_from(n).ok())
    }

    pub fn opt_bool(&mut self) -> Option<bool> {
        match self.next() {
            Node::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn opt_json(&mut self) -> Option<Value> {
        match self.next() {
            Node::Json(v) => Some(v),
            _ => None,
        }
    }

    pub fn opt_str_map(&mut self) -> Option<BTreeMap<String, String>> {
        match self.next() {
            Node::StrMap(m) => Some(m),
            _ => None,
        }
    }

    pub fn json_map(&mut self) -> BTreeMap<String, Value> {
        match self.next() {
            Node::JsonMap(m) => m,
            _ => BTreeMap::new(),
        }
    }

    pub fn strings(&mut self) -> Vec<String> {
        self.opt_strings().unwrap_or_default()
    }

    pub fn opt_strings(&mut self) -> Option<Vec<String>> {
        self.opt_list(|node| match node {
            Node::Str(s) => Some(s),
            _ => None,
        })
    }

    pub fn opt_variant(&mut self) -> Option<usize> {
        match self.next() {
            Node::Variant(i) => Some(i),
            _ => None,
        }
    }

    /// A struct field of type `T`.
    pub fn record<T>(&mut self, build: fn(Fields) -> T) -> T {
        let node = self.next();
        build(Fields::of(node))
    }

    /// A struct field of type `Option<T>`.
    pub fn opt_record<T>(&mut self, build: fn(Fields) -> T) -> Option<T> {
        match self.next() {
            node @ Node::Fields(_) => Some(build(Fields::of(node))),
            _ => None,
        }
    }

    pub fn records<T>(&mut self, build: fn(Fields) -> T) -> Vec<T> {
        self.opt_records(build).unwrap_or_default()
    }

    pub fn opt_records<T>(&mut self, build: fn(Fields) -> T) -> Option<Vec<T>> {
        self.opt_list(|node| Some(build(Fields::of(node))))
    }

    fn opt_list<T>(&mut self, mut item: impl FnMut(Node) -> Option<T>) -> Option<Vec<T>> {
        match self.next() {
            Node::List(items) => Some(items.into_iter().filter_map(&mut item).collect()),
            _ => None,
        }
    }
}
