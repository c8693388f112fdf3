//! A prost codec with small initial buffers for long-lived streams.
//!
//! tonic's default codec reserves 8 KiB for encoding and 8 KiB for decoding on
//! every stream. With one idle stream per edge and thousands of edges that is most
//! of the controller's memory per edge; EdgeSync messages are a few hundred bytes.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// [`tonic_prost::ProstCodec`] with 512-byte initial buffers.
#[derive(Debug, Clone, Copy)]
pub struct CompactCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for CompactCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for CompactCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(settings())
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(INITIAL_BUFFER, YIELD_THRESHOLD)
}

const INITIAL_BUFFER: usize = 512;
const YIELD_THRESHOLD: usize = 32 * 1024;
