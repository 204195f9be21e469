//! How server functions send their results: JSON, read in the browser from text.

use leptos::server_fn::codec::Post;
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::Serialize;
use serde::de::{DeserializeOwned, Error as _};

/// Every server function's output encoding (`#[server(output = JsonText)]`).
pub type JsonText = Post<JsonTextEncoding>;

/// The same JSON as Leptos' own `Json`, decoded from a `&str` instead of a byte slice.
///
/// A resource's value is serialized into the page and read back when it hydrates with
/// `serde_json::from_str`, and the live stream's events are text too; Leptos' `Json` reads a
/// refetched result with `serde_json::from_slice`. serde_json builds its deserializer for
/// each type once per kind of input, so every type a page both hydrates and refetches had two
/// copies of it in the browser bundle. Reading results as text too leaves one.
pub struct JsonTextEncoding;

impl ContentType for JsonTextEncoding {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonTextEncoding {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonTextEncoding {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonTextEncoding {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(serde_json::Error::custom)?;
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_round_trip_and_bad_bytes_are_an_error() {
        let bytes = <JsonTextEncoding as Encodes<Vec<String>>>::encode(&vec!["ünïcode".into()]).unwrap();
        let back: Vec<String> = <JsonTextEncoding as Decodes<Vec<String>>>::decode(bytes).unwrap();
        assert_eq!(back, ["ünïcode"]);
        let invalid = Bytes::from_static(b"[\"\xff\"]");
        assert!(<JsonTextEncoding as Decodes<Vec<String>>>::decode(invalid).is_err());
    }
}
