//! The serde side of binding: a row struct serialises into `Fields` (the struct level) and
//! each field into a `Column` that binds one parameter; anything that is not a struct of
//! scalars (or one nested struct) is refused with the field's name.

use serde::ser::{self, Impossible, Serialize};

use super::binder::{BindError, Binder};

/// The struct level: each field binds, or (a nested struct) binds its own fields prefixed.
pub(super) struct Fields<'a, 's, 'c> {
    pub(super) b: &'a mut Binder<'s, 'c>,
    pub(super) prefix: Option<&'static str>,
}

fn not_a_row<T>() -> Result<T, BindError> {
    Err(BindError("a row must be a struct of columns".into()))
}

impl<'a, 's, 'c> ser::SerializeStruct for Fields<'a, 's, 'c> {
    type Ok = ();
    type Error = BindError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), BindError> {
        value.serialize(Column {
            b: self.b,
            prefix: self.prefix,
            field: key,
        })
    }

    fn end(self) -> Result<(), BindError> {
        Ok(())
    }
}

macro_rules! refuse {
    ($($name:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<$ret, BindError> { not_a_row() })*
    };
}

impl<'a, 's, 'c> ser::Serializer for Fields<'a, 's, 'c> {
    type Ok = ();
    type Error = BindError;
    type SerializeSeq = Impossible<(), BindError>;
    type SerializeTuple = Impossible<(), BindError>;
    type SerializeTupleStruct = Impossible<(), BindError>;
    type SerializeTupleVariant = Impossible<(), BindError>;
    type SerializeMap = Impossible<(), BindError>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), BindError>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, BindError> {
        Ok(self)
    }

    refuse! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), BindError> {
        not_a_row()
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), BindError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), BindError> {
        not_a_row()
    }
}

/// One field's value: a scalar binds its parameter; `None` binds NULL; a struct nests (once).
struct Column<'a, 's, 'c> {
    b: &'a mut Binder<'s, 'c>,
    prefix: Option<&'static str>,
    field: &'static str,
}

impl<'a, 's, 'c> Column<'a, 's, 'c> {
    fn put<T: rusqlite::ToSql + ?Sized>(self, v: &T) -> Result<(), BindError> {
        self.b.put(self.prefix, self.field, v)
    }
    fn shape(&self, what: &str) -> BindError {
        BindError(format!("field `{}`: a column cannot hold {what}", self.field))
    }
}

impl<'a, 's, 'c> ser::Serializer for Column<'a, 's, 'c> {
    type Ok = ();
    type Error = BindError;
    type SerializeSeq = Impossible<(), BindError>;
    type SerializeTuple = Impossible<(), BindError>;
    type SerializeTupleStruct = Impossible<(), BindError>;
    type SerializeTupleVariant = Impossible<(), BindError>;
    type SerializeMap = Impossible<(), BindError>;
    type SerializeStruct = Fields<'a, 's, 'c>;
    type SerializeStructVariant = Impossible<(), BindError>;

    fn serialize_bool(self, v: bool) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_i8(self, v: i8) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), BindError> {
        self.put(&v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), BindError> {
        self.put(&i64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), BindError> {
        let v = i64::try_from(v).map_err(|_| self.shape("an integer above i64::MAX"))?;
        self.put(&v)
    }
    fn serialize_f32(self, v: f32) -> Result<(), BindError> {
        self.put(&f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), BindError> {
        self.put(&v)
    }
    fn serialize_char(self, v: char) -> Result<(), BindError> {
        self.put(v.encode_utf8(&mut [0; 4]) as &str)
    }
    fn serialize_str(self, v: &str) -> Result<(), BindError> {
        self.put(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), BindError> {
        self.put(v)
    }
    fn serialize_none(self) -> Result<(), BindError> {
        self.put(&rusqlite::types::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), BindError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), BindError> {
        self.put(&rusqlite::types::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), BindError> {
        self.put(&rusqlite::types::Null)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), BindError> {
        self.put(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), BindError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), BindError> {
        Err(self.shape("an enum with data"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, BindError> {
        Err(self.shape("a list (keep it as JSON text)"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, BindError> {
        Err(self.shape("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, BindError> {
        Err(self.shape("a tuple"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, BindError> {
        Err(self.shape("an enum with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, BindError> {
        Err(self.shape("a map (keep it as JSON text)"))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, BindError> {
        if self.prefix.is_some() {
            return Err(self.shape("a struct nested two deep"));
        }
        Ok(Fields {
            b: self.b,
            prefix: Some(self.field),
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, BindError> {
        Err(self.shape("an enum with data"))
    }
}
