//! The few protobuf messages of an event file, encoded by hand: `Event`, `Summary`,
//! `Summary.Value`, `SummaryMetadata`, `TensorProto` (field numbers from TensorBoard's
//! `event.proto`, `summary.proto` and `tensor.proto`).

/// Protobuf wire types used here.
#[derive(Clone, Copy)]
enum Wire {
    Varint = 0,
    Fixed64 = 1,
    Bytes = 2,
    Fixed32 = 5,
}

/// A message being encoded: fields appended in order.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn key(&mut self, field: u32, wire: Wire) {
        varint(&mut self.0, (u64::from(field) << 3) | wire as u64);
    }
    fn double(mut self, field: u32, value: f64) -> Self {
        self.key(field, Wire::Fixed64);
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn float(mut self, field: u32, value: f32) -> Self {
        self.key(field, Wire::Fixed32);
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn int(mut self, field: u32, value: u64) -> Self {
        self.key(field, Wire::Varint);
        varint(&mut self.0, value);
        self
    }
    fn bytes(mut self, field: u32, value: &[u8]) -> Self {
        self.key(field, Wire::Bytes);
        varint(&mut self.0, value.len() as u64);
        self.0.extend_from_slice(value);
        self
    }
    fn message(self, field: u32, value: Message) -> Self {
        self.bytes(field, &value.0)
    }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One entry of a summary.
pub enum Value<'a> {
    /// A scalar (`simple_value`), which TensorBoard's scalars dashboard shows.
    Scalar { tag: &'a str, value: f32 },
    /// A string for the text plugin (a rank-0 `DT_STRING` tensor, Markdown rendered).
    Text { tag: &'a str, text: &'a str },
}

/// `tensorflow.DataType.DT_STRING`.
const DT_STRING: u64 = 7;

impl Value<'_> {
    fn encode(&self) -> Message {
        match *self {
            Value::Scalar { tag, value } => {
                Message::default().bytes(1, tag.as_bytes()).float(2, value)
            }
            Value::Text { tag, text } => {
                let plugin = Message::default().bytes(1, b"text");
                let metadata = Message::default().message(1, plugin);
                // An empty shape message: a scalar tensor.
                let tensor = Message::default()
                    .int(1, DT_STRING)
                    .message(2, Message::default())
                    .bytes(8, text.as_bytes());
                Message::default()
                    .bytes(1, tag.as_bytes())
                    .message(8, tensor)
                    .message(9, metadata)
            }
        }
    }
}

/// What an event carries.
pub enum What<'a> {
    /// The first event of every file: the format's version.
    FileVersion,
    Summary(&'a [Value<'a>]),
}

/// The file version TensorBoard expects in the first event.
pub const FILE_VERSION: &str = "brain.Event:2";

/// An encoded `Event`.
pub fn event(wall_time: f64, step: u64, what: &What) -> Vec<u8> {
    let event = Message::default().double(1, wall_time).int(2, step);
    let event = match what {
        What::FileVersion => event.bytes(3, FILE_VERSION.as_bytes()),
        What::Summary(values) => {
            let summary = values
                .iter()
                .fold(Message::default(), |m, v| m.message(1, v.encode()));
            event.message(5, summary)
        }
    };
    event.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_take_seven_bits_a_byte() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xAC, 0x02]);
        out.clear();
        varint(&mut out, 1);
        assert_eq!(out, [1]);
    }

    #[test]
    fn a_file_version_event_encodes_field_by_field() {
        let bytes = event(1.5, 0, &What::FileVersion);
        let mut want = vec![0x09];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0x00, 0x1A, 13]);
        want.extend_from_slice(b"brain.Event:2");
        assert_eq!(bytes, want);
    }

    #[test]
    fn a_scalar_sits_in_a_value_in_a_summary() {
        let bytes = event(
            0.0,
            3,
            &What::Summary(&[Value::Scalar {
                tag: "a",
                value: 2.0,
            }]),
        );
        // Value: tag "a" (0A 01 61), simple_value (15 + f32), inside summary field 1.
        let mut value = vec![0x0A, 0x01, b'a', 0x15];
        value.extend_from_slice(&2.0f32.to_le_bytes());
        let mut summary = vec![0x0A, value.len() as u8];
        summary.extend_from_slice(&value);
        let tail = [&[0x2A, summary.len() as u8][..], &summary].concat();
        assert!(bytes.ends_with(&tail));
        assert_eq!(&bytes[9..11], &[0x10, 0x03]);
    }
}
