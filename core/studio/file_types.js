// What files an effect takes in the studio: its own input formats, and for a frame-wise effect a
// video too.

// A frame-wise effect (one image in, reading no video itself) also takes one video: the server runs
// every frame through it and sends a video back (MP4 or MOV), so the formats follow the file picked.
export const VIDEOS = ["mp4", "mov", "mkv", "webm"];
export const VIDEO_OUTPUTS = ["mp4", "mov"];

export function takesFrames(effect) {
  return effect.minInputs === 1 && !effect.inputFormats.some((f) => VIDEOS.includes(f));
}

// The computer's file chooser offers the effect's own input formats (a frame-wise one's videos too),
// by extension and media type. A format the page does not know, or none listed, leaves every file
// pickable: the server still says which it takes.
const FILE_TYPES = {
  png: ".png,image/png", png16: ".png,image/png", jpeg: ".jpg,.jpeg,image/jpeg", webp: ".webp,image/webp",
  exr: ".exr,image/x-exr", mp4: ".mp4,video/mp4", mov: ".mov,video/quicktime", mkv: ".mkv,video/x-matroska",
  webm: ".webm,video/webm", wav: ".wav,audio/wav", flac: ".flac,audio/flac", ogg: ".ogg,audio/ogg",
  mp3: ".mp3,audio/mpeg",
};

export function acceptOf(effect) {
  const formats = [...effect.inputFormats, ...(takesFrames(effect) ? VIDEOS : [])];
  if (!formats.length || formats.some((f) => !FILE_TYPES[f])) return "";
  return [...new Set(formats.flatMap((f) => FILE_TYPES[f].split(",")))].join(",");
}

export function isVideo(file) {
  return file.type.startsWith("video/") || VIDEOS.includes(file.name.split(".").pop().toLowerCase());
}
