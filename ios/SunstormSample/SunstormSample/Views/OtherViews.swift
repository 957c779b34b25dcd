import AVFoundation
import Sunstorm
import SwiftUI

/// Appliance bonding: scan, choose, type the PIN the appliance shows.
struct BondView: View {
    @EnvironmentObject private var model: AppModel
    @State private var chosen: ApplianceRow?
    @State private var pin = ""

    var body: some View {
        Form {
            Section("Appliances nearby") {
                ForEach(model.appliances, id: \.peripheralId) { row in
                    Button { chosen = row } label: {
                        HStack {
                            Text(row.displayName)
                            Spacer()
                            if chosen == row { Image(systemName: "checkmark") }
                        }
                    }
                }
                Button("Scan again") { model.scan() }
            }
            Section("PIN shown on the appliance") {
                SecureField("PIN", text: $pin).keyboardType(.numberPad)
                Button("Bond") { if let chosen { model.bond(chosen, pin: pin); pin = "" } }
                    .disabled(chosen == nil || pin.count < 4)
            }
            if let message = model.bondMessage { Text(message) }
        }
        .navigationTitle("Bond")
        .onAppear { model.scan() }
        .onDisappear { model.stopScan() }
    }
}

/// Pending sign requests: decoded view, warnings, guardrail violations.
struct SignRequestsView: View {
    @EnvironmentObject private var model: AppModel

    var body: some View {
        List {
            if let status = model.signStatus { Text(status).font(.headline) }
            if model.signRequests.isEmpty { Text("Nothing waiting.") }
            ForEach(model.signRequests) { r in
                VStack(alignment: .leading, spacing: 6) {
                    Text(r.title).font(.title3.bold())
                    Text("\(r.spName) · \(r.chain)").font(.caption)
                    Text("From \(r.account)").font(.caption.monospaced())
                    // The title is the intent ("swap", "Send"); each row shows its stable key small.
                    ForEach(r.fields, id: \.self) { f in
                        HStack {
                            VStack(alignment: .leading) {
                                Text(f.label)
                                if !f.key.isEmpty { Text(f.key).font(.caption2.monospaced()).foregroundStyle(.secondary) }
                            }
                            Spacer()
                            Text(f.value).monospaced()
                        }
                    }
                    if r.blind { Label("Parts could not be decoded: you would sign blind.", systemImage: "eye.slash").foregroundStyle(.red) }
                    ForEach(r.warnings, id: \.self) { Label($0, systemImage: "exclamationmark.triangle").foregroundStyle(.orange) }
                    ForEach(r.violations, id: \.self) { Label($0, systemImage: "hand.raised.fill").foregroundStyle(.red) }
                    // The appliance shows the same fingerprint beside its own screen before it signs.
                    if !r.displayFingerprint.isEmpty {
                        Text("Screen \(r.displayFingerprint): the appliance shows the same").font(.caption.monospaced())
                    }
                    HStack {
                        if r.blocked {
                            Text("Blocked by your guardrails.")
                        } else {
                            Button("Approve") { model.approveSign(r) }.buttonStyle(.borderedProminent)
                        }
                        Button("Reject", role: .destructive) { model.rejectSign(r) }.buttonStyle(.bordered)
                    }
                }
            }
        }
        .navigationTitle("Sign requests")
        .onAppear { model.refreshSignRequests() }
        .refreshable { model.refreshSignRequests() }
    }
}

/// Pairs, with revoke (asks first).
struct PairsView: View {
    @EnvironmentObject private var model: AppModel
    @State private var revoking: PairRow?

    var body: some View {
        List(model.pairs) { p in
            VStack(alignment: .leading) {
                Text(p.spName).font(.headline)
                Text(p.spUserRef).font(.caption)
                ForEach(p.bindings, id: \.self) { Text($0).font(.caption2.monospaced()) }
                if p.active {
                    Button("Revoke", role: .destructive) { revoking = p }
                } else {
                    Text("Revoked").foregroundStyle(.red)
                }
            }
        }
        .overlay { if model.pairs.isEmpty { Text("No pairs yet.") } }
        .navigationTitle("Pairs")
        .onAppear { model.refreshPairs() }
        .confirmationDialog("Revoke \(revoking?.spName ?? "")?", isPresented: Binding(get: { revoking != nil }, set: { if !$0 { revoking = nil } }),
                            titleVisibility: .visible) {
            Button("Revoke", role: .destructive) { if let p = revoking { model.revoke(p) } }
        } message: {
            Text("Your appliance signs the revocation; the service can no longer request signatures.")
        }
    }
}

/// QR scanning with AVFoundation (metadata output restricted to QR codes). The first code's
/// text goes to the same router as Universal Links.
struct QRScannerView: UIViewControllerRepresentable {
    let onScanned: (String) -> Void

    func makeUIViewController(context: Context) -> ScannerController {
        let c = ScannerController()
        c.onScanned = onScanned
        return c
    }

    func updateUIViewController(_ controller: ScannerController, context: Context) {}

    final class ScannerController: UIViewController, AVCaptureMetadataOutputObjectsDelegate {
        var onScanned: ((String) -> Void)?
        private let session = AVCaptureSession()
        private var done = false

        override func viewDidLoad() {
            super.viewDidLoad()
            guard let device = AVCaptureDevice.default(for: .video),
                  let input = try? AVCaptureDeviceInput(device: device), session.canAddInput(input) else { return }
            session.addInput(input)
            let output = AVCaptureMetadataOutput()
            guard session.canAddOutput(output) else { return }
            session.addOutput(output)
            output.setMetadataObjectsDelegate(self, queue: .main)
            output.metadataObjectTypes = [.qr]
            let preview = AVCaptureVideoPreviewLayer(session: session)
            preview.frame = view.layer.bounds
            preview.videoGravity = .resizeAspectFill
            view.layer.addSublayer(preview)
            let session = self.session
            DispatchQueue.global(qos: .userInitiated).async { session.startRunning() }
        }

        override func viewWillDisappear(_ animated: Bool) {
            super.viewWillDisappear(animated)
            session.stopRunning()
        }

        func metadataOutput(_ output: AVCaptureMetadataOutput, didOutput objects: [AVMetadataObject], from connection: AVCaptureConnection) {
            guard !done, let text = (objects.first as? AVMetadataMachineReadableCodeObject)?.stringValue else { return }
            done = true
            onScanned?(text)
        }
    }
}
