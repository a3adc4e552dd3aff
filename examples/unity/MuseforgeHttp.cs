// museforge from Unity without gRPC (WebGL builds included): the HTTP/JSON gateway
// (`museforge serve --http-address 127.0.0.1:8080`, and for WebGL `http_cors_origins`
// listing the page's origin). Attach to a GameObject with a Renderer.
using System;
using System.Collections;
using System.Text;
using UnityEngine;
using UnityEngine.Networking;

public class MuseforgeHttp : MonoBehaviour
{
    public string gateway = "http://127.0.0.1:8080";
    public int digit = 7;
    public int seed = 42;

    [Serializable] class Artifact { public string data; public string filename; public string mediaType; }
    [Serializable] class GenerateReply { public Artifact[] artifacts; public string seed; }
    [Serializable] class Failure { public Error error; }
    [Serializable] class Error { public int code; public string status; public string message; }

    IEnumerator Start()
    {
        var body = $"{{\"parameters\": {{\"digit\": {digit}}}, \"seed\": {seed}, \"count\": 1}}";
        using var request = new UnityWebRequest($"{gateway}/v1/generators/image.digits:generate", "POST");
        request.uploadHandler = new UploadHandlerRaw(Encoding.UTF8.GetBytes(body));
        request.downloadHandler = new DownloadHandlerBuffer();
        request.SetRequestHeader("Content-Type", "application/json");  // required by the gateway
        yield return request.SendWebRequest();
        if (request.result != UnityWebRequest.Result.Success)
        {
            // No answer at all (a refused connection) leaves the text empty, not null.
            var text = request.downloadHandler.text;
            var failure = string.IsNullOrEmpty(text) ? null : JsonUtility.FromJson<Failure>(text);
            Debug.LogError($"museforge: {failure?.error?.status}: {failure?.error?.message ?? request.error}");
            yield break;
        }
        var reply = JsonUtility.FromJson<GenerateReply>(request.downloadHandler.text);
        var texture = new Texture2D(2, 2) { filterMode = FilterMode.Point };
        texture.LoadImage(Convert.FromBase64String(reply.artifacts[0].data));
        GetComponent<Renderer>().material.mainTexture = texture;
    }
}
