// Record a reference with the microphone (MediaRecorder), then hand it to the upload form as
// a WAV file: browsers record WebM or Ogg/Opus, and the service takes WAV, FLAC, OGG or MP3,
// so the recording is decoded here and written as 16-bit mono PCM WAV. The form then posts
// it like a chosen file: the same checks, consent and transcript.

const box = document.getElementById("recorder");
const input = document.getElementById("audio");
const start = document.getElementById("record-start");
const stop = document.getElementById("record-stop");
const state = document.getElementById("record-state");
const preview = document.getElementById("record-preview");

function wavBytes(samples, rate) {
  const data = new DataView(new ArrayBuffer(44 + samples.length * 2));
  const text = (at, s) => [...s].forEach((c, i) => data.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  data.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  data.setUint32(16, 16, true);
  data.setUint16(20, 1, true); // PCM
  data.setUint16(22, 1, true); // mono
  data.setUint32(24, rate, true);
  data.setUint32(28, rate * 2, true);
  data.setUint16(32, 2, true);
  data.setUint16(34, 16, true);
  text(36, "data");
  data.setUint32(40, samples.length * 2, true);
  samples.forEach((x, i) => {
    const v = Math.max(-1, Math.min(1, x));
    data.setInt16(44 + i * 2, v < 0 ? v * 0x8000 : v * 0x7fff, true);
  });
  return data.buffer;
}

function mono(buffer) {
  if (buffer.numberOfChannels === 1) return buffer.getChannelData(0);
  const out = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    buffer.getChannelData(c).forEach((x, i) => { out[i] += x / buffer.numberOfChannels; });
  }
  return out;
}

async function toWav(blob) {
  const context = new AudioContext();
  try {
    const decoded = await context.decodeAudioData(await blob.arrayBuffer());
    return new Blob([wavBytes(mono(decoded), decoded.sampleRate)], { type: "audio/wav" });
  } finally {
    context.close();
  }
}

function useFile(wav) {
  const transfer = new DataTransfer();
  transfer.items.add(new File([wav], "recording.wav", { type: "audio/wav" }));
  input.files = transfer.files;
  preview.src = URL.createObjectURL(wav);
  preview.hidden = false;
}

if (box && input && window.MediaRecorder && navigator.mediaDevices) {
  box.hidden = false;
  let recorder = null;
  start.addEventListener("click", async () => {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      state.textContent = `The microphone is not available (${error.name}).`;
      return;
    }
    const parts = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener("dataavailable", (event) => parts.push(event.data));
    recorder.addEventListener("stop", async () => {
      stream.getTracks().forEach((track) => track.stop());
      state.textContent = "Converting the recording…";
      try {
        useFile(await toWav(new Blob(parts, { type: recorder.mimeType })));
        state.textContent = "Recorded. Listen below, then check and add it.";
        state.dataset.ready = "true";
      } catch (error) {
        state.textContent = `The recording could not be read (${error.name}); try again.`;
      }
    });
    recorder.start();
    start.disabled = true;
    stop.disabled = false;
    state.textContent = "Recording… speak now, then press Stop.";
  });
  stop.addEventListener("click", () => {
    if (recorder && recorder.state === "recording") recorder.stop();
    start.disabled = false;
    stop.disabled = true;
  });
}
